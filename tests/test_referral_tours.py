# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from unittest.mock import patch

from odoo import Command, fields
from odoo.tests import HttpCase, new_test_user, tagged

STATEMENT_MODEL = "report.sale_referral_lifecycle.report_referral_statement"


@tagged("post_install", "-at_install")
class TestReferralTours(HttpCase):
    """Every user flow of the addon, in Chromium: referring a company from
    the back office, the portal and a referral link, spending credit on a
    quotation or an invoice, printing a wallet statement, and editing the
    lifecycle stages."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.program = cls.env.ref("sale_referral_lifecycle.referral_program_default")
        cls.program.write(
            {
                "sponsor_policy": "any",
                "portal_enabled": True,
                "redeem_scope": "any",
                "credit_tax_mode": "payment",
                # The salesperson applies the credit (demo data applies it
                # on renewals by itself).
                "auto_apply_on_renewal": False,
            }
        )
        cls.salesman = new_test_user(
            cls.env,
            login="tour_seller",
            password="tour_seller",
            name="Sid Seller",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        cls.sponsor = cls.env["res.partner"].create(
            {
                "name": "Tour Link Sponsor",
                "is_company": True,
                "user_id": cls.salesman.id,
            }
        )
        cls.product = cls.env["product.product"].create(
            {
                "name": "Tour plan",
                "type": "service",
                "list_price": 1000.0,
                "invoice_policy": "order",
                "taxes_id": [Command.clear()],
            }
        )

    def _fund(self, amount):
        wallet = self.env["referral.wallet"]._get_or_create(
            self.sponsor, self.env.company
        )
        wallet.sudo()._credit(amount, name="Tour credit")
        return wallet

    def test_salesperson_refers_a_company_from_the_sponsor_form(self):
        salesman = new_test_user(
            self.env,
            login="tour_salesman",
            password="tour_salesman",
            name="Tom Tour",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        self.env["referral.program"].search([]).sponsor_policy = "any"
        sponsor = self.env["res.partner"].create(
            {"name": "Tour Sponsor", "is_company": True, "user_id": salesman.id}
        )
        self.start_tour(
            f"/odoo/action-base.action_partner_form/{sponsor.id}",
            "sale_referral_lifecycle_refer_company",
            login="tour_salesman",
        )
        referral = self.env["referral.referral"].search(
            [("sponsor_id", "=", sponsor.id)]
        )
        self.assertRecordValues(
            referral, [{"user_id": salesman.id, "source": "backend", "state": "new"}]
        )
        self.assertEqual(referral.referee_id.name, "Tour Prospect")
        self.assertEqual(
            referral.referee_id.child_ids.email, "tina@tour-prospect.example.com"
        )
        self.assertEqual(
            sorted(referral.activity_ids.mapped("summary")),
            ["Call the prospect", "Call the sponsor"],
        )
        self.assertEqual(referral.activity_ids.user_id, salesman)

    def test_portal_user_refers_a_company(self):
        portal = new_test_user(
            self.env,
            login="tour_portal",
            password="tour_portal",
            name="Polly Portal",
            groups="base.group_portal",
        )
        portal.partner_id.parent_id = self.sponsor
        self.start_tour(
            "/my/referrals", "sale_referral_lifecycle_portal_refer", login="tour_portal"
        )
        referral = self.env["referral.referral"].search(
            [("sponsor_id", "=", self.sponsor.id)]
        )
        self.assertRecordValues(
            referral, [{"source": "portal", "user_id": self.salesman.id}]
        )
        self.assertEqual(referral.referee_id.name, "Tour Portal Prospect")
        self.assertEqual(len(referral.activity_ids), 2)

    def test_visitor_uses_a_referral_link(self):
        self.start_tour(
            f"/r/{self.sponsor.referral_code}", "sale_referral_lifecycle_referral_link"
        )
        referral = self.env["referral.referral"].search(
            [("sponsor_id", "=", self.sponsor.id)]
        )
        self.assertRecordValues(referral, [{"source": "code"}])
        self.assertEqual(referral.referee_id.name, "Visitor Company")

    def test_salesperson_applies_credit_on_a_renewal_quotation(self):
        wallet = self._fund(100.0)
        order = self.env["sale.order"].create(
            {
                "partner_id": self.sponsor.id,
                "user_id": self.salesman.id,
                "is_renewal": True,
                "order_line": [Command.create({"product_id": self.product.id})],
            }
        )
        self.start_tour(
            f"/odoo/action-sale.action_quotations_with_onboarding/{order.id}",
            "sale_referral_lifecycle_credit_order",
            login="tour_seller",
        )
        self.assertEqual(order.state, "sale")
        self.assertEqual(wallet.balance, 0.0)

    def test_salesperson_fits_credit_spent_elsewhere(self):
        wallet = self._fund(100.0)
        order = self.env["sale.order"].create(
            {
                "partner_id": self.sponsor.id,
                "user_id": self.salesman.id,
                "order_line": [Command.create({"product_id": self.product.id})],
            }
        )
        order.action_apply_referral_credit()
        wallet.sudo()._debit(60.0, name="Spent elsewhere")
        self.start_tour(
            f"/odoo/action-sale.action_quotations_with_onboarding/{order.id}",
            "sale_referral_lifecycle_credit_fit",
            login="tour_seller",
        )
        self.assertEqual(order.state, "sale")
        self.assertEqual(order.referral_credit_amount, 40.0)
        self.assertEqual(wallet.balance, 0.0)

    def test_accountant_applies_credit_on_a_draft_invoice(self):
        new_test_user(
            self.env,
            login="tour_accountant",
            password="tour_accountant",
            name="Ada Accountant",
            groups="account.group_account_invoice",
        )
        wallet = self._fund(80.0)
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.sponsor.id,
                "invoice_date": fields.Date.today(),
                "invoice_line_ids": [Command.create({"product_id": self.product.id})],
            }
        )
        self.start_tour(
            f"/odoo/action-account.action_move_out_invoice_type/{invoice.id}",
            "sale_referral_lifecycle_credit_invoice",
            login="tour_accountant",
        )
        self.assertEqual(invoice.state, "posted")
        self.assertEqual(wallet.balance, 30.0)

    def test_statement_printed_from_the_wallet_wizard(self):
        """The period wizard's report action names the wallet and prints its
        movements (the web client sends the wizard's data without ids)."""
        sponsor = self.env["res.partner"].create(
            {"name": "Tour Wallet Sponsor", "is_company": True}
        )
        wallet = self.env["referral.wallet"]._get_or_create(sponsor, self.env.company)
        wallet._credit(75.0, name="Reward for the tour")
        # A layout chosen: no document layout dialog before the report.
        self.env.company.external_report_layout_id = self.env.ref(
            "web.external_layout_standard"
        )
        rendered = []
        Report = self.env.registry[STATEMENT_MODEL]
        get_values = Report._get_report_values

        def spy(report, docids, data=None):
            values = get_values(report, docids, data=data)
            rendered.append(values["docs"].ids)
            return values

        # Shown in the web client (HTML) whether wkhtmltopdf is installed or
        # not, so that the tour reads the statement.
        with (
            patch.object(
                type(self.env["ir.actions.report"]),
                "get_wkhtmltopdf_state",
                return_value="install",
            ),
            patch.object(Report, "_get_report_values", spy),
        ):
            self.start_tour(
                f"/odoo/action-sale_referral_lifecycle.action_referral_wallet/{wallet.id}",
                "sale_referral_lifecycle_wallet_statement",
                login="admin",
            )
        self.assertIn(wallet.ids, rendered)

    def test_admin_reorders_stages_and_edits_criteria(self):
        Stage = self.env["partner.lifecycle.stage"]
        suspect = self.env.ref("sale_referral_lifecycle.stage_suspect")
        prospect = self.env.ref("sale_referral_lifecycle.stage_prospect")
        client = self.env.ref("sale_referral_lifecycle.stage_client")
        self.assertEqual(Stage.search([], limit=2), suspect | prospect)
        self.sponsor.vat = "BE0477472701"
        held = self.env["referral.referral"].create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Twin Tour",
                "referee_vat": "BE0477472701",
            }
        )
        self.assertEqual(held.state, "to_review")
        self.start_tour(
            "/odoo/action-sale_referral_lifecycle.action_partner_lifecycle_stage",
            "sale_referral_lifecycle_stage_admin",
            login="admin",
        )
        self.assertLess(prospect.sequence, suspect.sequence)
        self.assertEqual(client.min_order_count, 2)

    def test_salesperson_turns_a_referral_into_an_order_then_a_reward(self):
        """New Quotation on the referral, the quotation saved then confirmed
        from the referral's Quotations button: the referral is won, and
        rewarded by the queued job."""
        self.env["product.product"].create(
            {
                "name": "Tour Quote Plan",
                "type": "service",
                "list_price": 1000.0,
                "taxes_id": [Command.clear()],
            }
        )
        referral = self.env["referral.referral"].create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Tour Quote Prospect",
            }
        )
        referral.action_start()
        url = (
            "/odoo/action-sale_referral_lifecycle.action_referral_referral/"
            f"{referral.id}"
        )
        self.start_tour(
            url, "sale_referral_lifecycle_referral_quotation", login="tour_seller"
        )
        order = referral.first_order_id
        self.assertRecordValues(
            order,
            [
                {
                    "state": "sale",
                    "partner_id": referral.referee_id.id,
                    "referral_id": referral.id,
                    "user_id": self.salesman.id,
                    "source_id": self.env.ref(
                        "sale_referral_lifecycle.utm_source_referral"
                    ).id,
                    "amount_untaxed": 1000.0,
                }
            ],
        )
        self.assertEqual(referral.state, "won")
        while self.env["partner.lifecycle.queue"]._cron_process():
            pass
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(referral.reward_amount, 100.0)
        self.start_tour(
            url, "sale_referral_lifecycle_referral_rewarded", login="tour_seller"
        )

    def test_sponsor_gets_its_statement_from_the_portal(self):
        """No PDF engine: the statement of the default period on a portal
        page that says so (whatever this machine has installed)."""
        portal = new_test_user(
            self.env,
            login="tour_statement_portal",
            password="tour_statement_portal",
            name="Stella Statement",
            groups="base.group_portal",
        )
        portal.partner_id.parent_id = self.sponsor
        referral = self.env["referral.referral"].create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Tour Statement Prospect",
            }
        )
        wallet = self.env["referral.wallet"]._get_or_create(
            self.sponsor, self.env.company
        )
        wallet._credit(42.0, referral_id=referral.id, name="Reward")
        with patch.object(
            type(self.env["ir.actions.report"]),
            "get_wkhtmltopdf_state",
            return_value="install",
        ):
            self.start_tour(
                "/my/wallet",
                "sale_referral_lifecycle_portal_statement",
                login="tour_statement_portal",
            )

    def test_salesperson_imports_the_template_of_the_referrals(self):
        """The template the import dialog offers (the rows of the samples,
        whose sponsors are demo customers), tested then imported."""
        if not self.env.ref("base.res_partner_3", raise_if_not_found=False):
            self.skipTest("The template names customers of the demo data.")
        self.start_tour(
            "/odoo/action-sale_referral_lifecycle.action_referral_referral",
            "sale_referral_lifecycle_referral_import",
            login="tour_seller",
        )
        referrals = self.env["referral.referral"].search(
            [
                (
                    "referee_company_name",
                    "in",
                    ["Maple Dental", "Willow Bakery", "Hazel Architects"],
                )
            ]
        )
        self.assertRecordValues(
            referrals.sorted("referee_company_name"),
            [
                {"referee_company_name": name, "source": "import", "state": "new"}
                for name in ("Hazel Architects", "Maple Dental", "Willow Bakery")
            ],
        )
