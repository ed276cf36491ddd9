# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import unittest

from lxml import etree

from odoo.tests import Form, HttpCase, tagged

MODULE = "sale_referral_lifecycle"


@tagged("post_install", "-at_install")
class TestReferralDemo(HttpCase):
    """Every claim of the README's "First clicks after make demo", on the
    demo data as a fresh `make demo` loads it (the numbers of the README's
    list in each test's name)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.bluebird = cls.env.ref(
            f"{MODULE}.referral_demo_new", raise_if_not_found=False
        )
        if not cls.bluebird:
            raise unittest.SkipTest(
                "The README's first clicks are about the demo data."
            )
        cls.northwind = cls.env.ref(f"{MODULE}.referral_demo_in_progress")
        cls.harbor = cls.env.ref(f"{MODULE}.referral_demo_won")
        cls.lumen = cls.env.ref(f"{MODULE}.referral_demo_lost")
        cls.gemini = cls.env.ref("base.res_partner_3")
        cls.lumber = cls.env.ref("base.res_partner_18")
        cls.marc = cls.env.ref("base.user_demo")
        cls.admin = cls.env.ref("base.user_admin")
        cls.northwind_order = cls.env.ref(
            f"{MODULE}.sale_order_demo_referral_in_progress"
        )
        cls.harbor_order = cls.env.ref(f"{MODULE}.sale_order_demo_referral_won")
        cls.oakwood_order = cls.env.ref(f"{MODULE}.sale_order_demo_referral_code")
        cls.renewal = cls.env.ref(f"{MODULE}.sale_order_demo_sponsor_renewal")
        cls.wallet = cls.env["referral.wallet"].search(
            [
                ("partner_id", "=", cls.gemini.id),
                ("company_id", "=", cls.env.company.id),
            ]
        )

    def _process_queue(self):
        while self.env["partner.lifecycle.queue"]._cron_process():
            pass

    def _form_buttons(self, model):
        arch = self.env[model].get_views([(False, "form")])["views"]["form"]["arch"]
        return {node.get("name") for node in etree.fromstring(arch).iter("button")}

    def test_users_of_the_demo(self):
        self.assertTrue(
            self.admin.has_group(f"{MODULE}.group_referral_reward_approver")
        )
        self.assertTrue(self.admin.has_group("sales_team.group_sale_manager"))
        self.assertTrue(self.marc.has_group("sales_team.group_sale_salesman"))
        self.assertFalse(
            self.marc.has_group("sales_team.group_sale_salesman_all_leads")
        )
        self.assertEqual((self.gemini | self.lumber).user_id, self.marc)
        accountant = self.env["res.users"].search([("login", "=", "accountant")])
        self.assertTrue(accountant.has_group("account.group_account_invoice"))
        portal = self.env["res.users"].search([("login", "=", "gemini")])
        self.assertTrue(portal.has_group("base.group_portal"))
        self.assertEqual(portal.partner_id.name, "Edwin Hansen")
        self.assertEqual(portal.partner_id.commercial_partner_id, self.gemini)

    def test_1_referrals_of_gemini_and_lumber_bluebird_new_with_its_calls(self):
        referrals = self.env["referral.referral"].search([])
        self.assertEqual(
            set(referrals.mapped("sponsor_id.name"))
            & {"Gemini Furniture", "Lumber Inc"},
            {"Gemini Furniture", "Lumber Inc"},
        )
        action = self.env["ir.actions.act_window"]._for_xml_id(
            f"{MODULE}.action_referral_referral"
        )
        self.assertIn("search_default_to_do", action["context"])
        self.assertRecordValues(self.bluebird.referee_id, [{"name": "Bluebird Studio"}])
        self.assertEqual(self.bluebird.state, "new")
        self.assertEqual(
            sorted(self.bluebird.activity_ids.mapped("summary")),
            ["Call the prospect", "Call the sponsor"],
        )
        self.assertEqual(self.bluebird.activity_ids.user_id, self.marc)
        self.assertTrue(
            {
                "action_new_quotation",
                "action_start",
                "action_open_lost_wizard",
                "action_reject",
            }
            <= self._form_buttons("referral.referral")
        )
        self.assertEqual(self.lumen.state, "lost")

    def test_2_northwind_quotations_then_confirmed_and_rewarded(self):
        self.assertEqual(self.northwind.state, "in_progress")
        self.assertEqual(self.northwind.referee_id.name, "Northwind Traders")
        self.assertEqual(self.northwind_order.name, "S00022")
        self.assertEqual(self.northwind_order.referral_id, self.northwind)
        northwind = self.northwind.with_user(self.marc)
        self.assertEqual(northwind.quotation_count, 1)
        self.assertEqual(
            northwind.action_view_quotations()["res_id"], self.northwind_order.id
        )
        context = northwind.action_new_quotation()["context"]
        with Form(
            self.env["sale.order"].with_user(self.marc).with_context(**context)
        ) as form:
            with form.order_line.new() as line:
                line.product_id = self.env.ref(f"{MODULE}.product_demo_subscription")
        self.assertRecordValues(
            form.record,
            [
                {
                    "partner_id": self.northwind.referee_id.id,
                    "referral_id": self.northwind.id,
                    "user_id": self.marc.id,
                    "source_id": self.env.ref(f"{MODULE}.utm_source_referral").id,
                }
            ],
        )
        self.assertEqual(northwind.quotation_count, 2)
        balance = self.wallet.balance
        self.northwind_order.with_user(self.marc).action_confirm()
        self.assertEqual(self.northwind.state, "won")
        self._process_queue()
        self.assertEqual(self.northwind.state, "rewarded")
        self.assertEqual(self.northwind.reward_amount, 360.0)
        self.wallet.invalidate_recordset()
        self.assertAlmostEqual(self.wallet.balance, balance + 360.0)

    def test_3_harbor_won_and_gemini_rewarded(self):
        self.assertEqual(self.harbor_order.name, "S00023")
        self.assertEqual(self.harbor_order.state, "sale")
        self.assertEqual(self.harbor.referee_id.name, "Harbor Logistics")
        self.assertRecordValues(
            self.harbor, [{"state": "rewarded", "first_order_id": self.harbor_order.id}]
        )
        self.assertRecordValues(
            self.harbor.transaction_ids,
            [{"transaction_type": "credit", "state": "posted", "amount": 236.40}],
        )
        self.assertEqual(self.harbor_order.amount_untaxed, 2364.0)
        self.assertEqual(self.wallet.balance, 236.40)

    def test_4_renewal_carries_the_credit_and_oakwood_code_creates_a_referral(self):
        self.assertEqual(self.renewal.name, "S00025")
        self.assertRecordValues(
            self.renewal,
            [{"partner_id": self.gemini.id, "is_renewal": True, "state": "draft"}],
        )
        credit_lines = self.renewal.order_line.filtered("referral_credit_wallet_id")
        self.assertTrue(credit_lines)
        self.assertEqual(credit_lines.referral_credit_wallet_id, self.wallet)
        # The credit lines' taxed total: the wallet's balance, to the cent
        # that the lines' rounded prices allow.
        self.assertAlmostEqual(self.renewal.referral_credit_amount, 236.40, delta=0.011)
        self.assertEqual(
            self.env["sale.order"]._fields["referral_credit_amount"].string,
            "Referral Credit Applied (Tax Incl.)",
        )
        self.assertEqual(self.oakwood_order.name, "S00024")
        self.assertEqual(self.oakwood_order.partner_id.name, "Oakwood Bakery")
        self.assertEqual(self.oakwood_order.referral_code_sponsor_id, self.lumber)
        self.assertEqual(
            self.env["sale.order"]._fields["referral_code_sponsor_id"].string,
            "Referred By",
        )
        self.oakwood_order.with_user(self.marc).action_confirm()
        self.assertRecordValues(
            self.oakwood_order.referral_id,
            [{"sponsor_id": self.lumber.id, "source": "code", "state": "won"}],
        )

    def test_5_customer_lifecycle_by_stage(self):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            f"{MODULE}.action_partner_lifecycle"
        )
        self.assertEqual(action["res_model"], "res.partner")
        self.assertTrue(self.gemini.lifecycle_stage_id)
        self.assertTrue(self.harbor.referee_id.lifecycle_stage_id)

    def test_6_dashboard_and_settings(self):
        program = self.env.ref(f"{MODULE}.referral_program_default")
        self.assertGreaterEqual(program.kpi_referred_customer_count, 1)
        self.assertGreater(program.kpi_referral_share, 0)
        self.assertEqual(len(program.kpi_share_months["months"]), 12)
        self.assertIn("Gemini Furniture", [s["name"] for s in program.kpi_top_sponsors])
        self.assertEqual(program.kpi_credit_outstanding, 236.40)
        menu = self.env.ref(f"{MODULE}.menu_referral_program_dashboard")
        self.assertEqual(
            menu.parent_id, self.env.ref(f"{MODULE}.menu_referral_analysis")
        )
        self.assertEqual(
            (menu.parent_id.name, menu.parent_id.parent_id.name),
            ("Reporting", "Referrals"),
        )
        for action in ("customers", "conversion", "days", "credit", "sponsors"):
            self.assertEqual(
                getattr(program, f"action_open_kpi_{action}")()["type"],
                "ir.actions.act_window",
            )
        settings = self.env["res.config.settings"].create({})
        self.assertEqual(settings.action_open_referral_program()["res_id"], program.id)
        arch = settings.get_views([(False, "form")])["views"]["form"]["arch"]
        block = etree.fromstring(arch).xpath(
            "//block[@name='referral_setting_container']"
        )
        self.assertEqual(block[0].get("title"), "Referrals")

    def test_7_accountant_sees_the_spendable_credit_on_a_draft_invoice(self):
        accountant = self.env["res.users"].search([("login", "=", "accountant")])
        invoice = (
            self.env["account.move"]
            .with_user(accountant)
            .create({"move_type": "out_invoice", "partner_id": self.gemini.id})
        )
        self.assertEqual(invoice.referral_credit_available, 236.40)

    def test_8_portal_customer_reads_its_referrals_and_credit(self):
        self.authenticate("gemini", "gemini")
        referrals = self.url_open("/my/referrals")
        self.assertEqual(referrals.status_code, 200)
        for name in ("Bluebird Studio", "Northwind Traders", "Harbor Logistics"):
            self.assertIn(name, referrals.text)
        self.assertIn(f"/r/{self.gemini.referral_code}", referrals.text)
        wallet = self.url_open("/my/wallet")
        self.assertIn("Reward for referring Harbor Logistics", wallet.text)
        self.assertIn("236.40", wallet.text)
        statement = self.url_open("/my/wallet/statement")
        self.assertEqual(statement.status_code, 200)
        self.assertIn("Reward for referring Harbor Logistics", statement.text)

    def test_9_public_link_of_the_samples_code(self):
        joel = self.env.ref("base.partner_demo_portal")
        self.assertEqual(joel.referral_code, "KP7RM4TX")
        page = self.url_open("/r/KP7RM4TX")
        self.assertEqual(page.status_code, 200)
        self.assertIn("Joel Willis", page.text)
        self.assertIn("I agree to be contacted", page.text)
        self.assertNotIn("my contact&#39;s agreement", page.text)
        self.assertNotIn("my contact's agreement", page.text)
