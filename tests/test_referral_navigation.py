# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import Counter

from lxml import etree

from odoo import Command, fields
from odoo.tests import Form, tagged
from odoo.tools.safe_eval import safe_eval

from .common import WalletCommon

MODULE = "sale_referral_lifecycle"


@tagged("post_install", "-at_install")
class TestReferralNavigation(WalletCommon):
    """Where things are found: one menu per report, a Referrals block in
    the settings, a referral code found by the customers' search, the
    credit a draft invoice may spend."""

    def _visible_menus(self, user):
        return self.env["ir.ui.menu"].with_user(user)._visible_menu_ids()

    def _addon_menus(self):
        return self.env["ir.ui.menu"].search(
            [
                (
                    "id",
                    "in",
                    self.env["ir.model.data"]
                    .search([("module", "=", MODULE), ("model", "=", "ir.ui.menu")])
                    .mapped("res_id"),
                )
            ]
        )

    def test_one_menu_per_report_under_referrals_reporting(self):
        reporting = self.env.ref(f"{MODULE}.menu_referral_analysis")
        self.assertEqual(reporting.name, "Reporting")
        self.assertEqual(
            reporting.parent_id, self.env.ref(f"{MODULE}.menu_referral_root")
        )
        reports = reporting.child_id
        self.assertEqual(
            reports.mapped("name"),
            [
                "Dashboard",
                "Referrals",
                "New Customers and Referral Share",
                "Conversion: Referred vs Others",
                "Top Sponsors",
                "Credit Earned, Spent, Outstanding",
                "Lifecycle Funnel",
                "Conversion by Channel",
                "Top Customers by Stage",
                "Top Products by Stage",
                "Follow-ups",
            ],
        )
        # No report of the addon is reached twice from the Sales app; the
        # billing users' entries live in Invoicing.
        sales_root = self.env.ref("sale.sale_menu_root")
        in_sales = self._addon_menus().filtered(
            lambda m: m.action and m.parent_path.startswith(sales_root.parent_path)
        )
        actions = Counter(str(menu.action) for menu in in_sales)
        self.assertFalse([action for action, count in actions.items() if count > 1])
        self.assertFalse(
            self._addon_menus().filtered(
                lambda m: m.parent_id == self.env.ref("sale.menu_sale_report")
            )
        )

    def test_salesperson_reports_are_a_subset_of_the_manager_ones(self):
        reports = self.env.ref(f"{MODULE}.menu_referral_analysis").child_id
        manager = self._visible_menus(self.sale_manager)
        salesman = self._visible_menus(self.salesman)
        self.assertTrue(set(reports.ids) <= manager)
        seen_by_salesman = reports.filtered(lambda m: m.id in salesman)
        self.assertEqual(
            reports - seen_by_salesman,
            self.env.ref(f"{MODULE}.menu_referral_program_dashboard"),
        )
        # What they see opens, on what their access lets them read.
        for menu in seen_by_salesman:
            action = menu.action.sudo()
            self.env[action.res_model].with_user(self.salesman).search([], limit=1)

    def test_settings_block_links_program_stages_and_rules(self):
        settings = self.env["res.config.settings"].create({})
        arch = etree.fromstring(
            settings.get_views([(False, "form")])["views"]["form"]["arch"]
        )
        block = arch.xpath("//block[@name='referral_setting_container']")[0]
        self.assertEqual(block.get("title"), "Referrals")
        self.assertEqual(
            [setting.get("id") for setting in block.iter("setting")],
            ["referral_program", "referral_lifecycle_stages", "followup_min_gap"],
        )
        buttons = {button.get("name") for button in block.iter("button")}
        self.assertIn("action_open_referral_program", buttons)
        for xmlid in ("action_partner_lifecycle_stage", "action_partner_followup_rule"):
            self.assertIn(str(self.env.ref(f"{MODULE}.{xmlid}").id), buttons)
        action = settings.action_open_referral_program()
        self.assertEqual(
            (action["res_model"], action["res_id"]),
            ("referral.program", self.program.id),
        )
        with Form(settings) as form:
            form.followup_min_gap_days = 4
        self.assertEqual(self.env.company.followup_min_gap_days, 4)
        # A company without program gets the form of a new one.
        self.env["referral.program"].search(
            [("company_id", "=", self.other_company.id)]
        ).active = False
        other = (
            self.env["res.config.settings"].with_company(self.other_company).create({})
        )
        action = other.action_open_referral_program()
        self.assertFalse(action["res_id"])
        self.assertEqual(action["context"]["default_company_id"], self.other_company.id)

    def test_referral_code_found_by_the_default_search(self):
        """Typed in the customers' search and validated (the first choice,
        the name), a code finds its contact, whatever its case."""
        arch = etree.fromstring(
            self.env["res.partner"].get_views([(False, "search")])["views"]["search"][
                "arch"
            ]
        )
        name = arch.xpath("//field[@name='name']")[0]
        domain_text = name.get("filter_domain")
        Partner = self.env["res.partner"]
        for typed in (self.sponsor.referral_code, self.sponsor.referral_code.lower()):
            found = Partner.search(safe_eval(domain_text, {"self": typed}))
            self.assertEqual(found, self.sponsor)
        # The name, email and the rest still searched as before.
        found = Partner.search(safe_eval(domain_text, {"self": "Sponsor Corp"}))
        self.assertIn(self.sponsor, found)
        # A piece of a code is no code.
        found = Partner.search(
            safe_eval(domain_text, {"self": self.sponsor.referral_code[:5]})
        )
        self.assertNotIn(self.sponsor, found)

    def test_draft_invoice_says_what_credit_its_customer_can_spend(self):
        wallet = self._wallet()
        wallet._credit(75.0, name="Credit")
        invoice = (
            self.env["account.move"]
            .with_user(self.accountant)
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.sponsor_contact.id,
                    "invoice_date": fields.Date.today(),
                    "invoice_line_ids": [
                        Command.create({"product_id": self.product.id})
                    ],
                }
            )
        )
        self.assertEqual(invoice.referral_credit_available, 75.0)
        arch = etree.fromstring(
            invoice.get_views([(False, "form")])["views"]["form"]["arch"]
        )
        banner = arch.xpath("//div[@name='referral_credit_available']")[0]
        self.assertIn("not referral_credit_available", banner.get("invisible"))
        self.assertEqual(
            [f.get("name") for f in banner.iter("field")], ["referral_credit_available"]
        )
        self.assertEqual(
            [b.get("name") for b in banner.iter("button")],
            ["action_open_referral_credit_wizard"],
        )
        refund_label = arch.xpath(
            "//field[@name='referral_credit_amount']"
            "[contains(@invisible, \"!= 'out_refund'\")]"
        )
        self.assertEqual(
            refund_label[0].get("string"), "Referral Credit Given Back (Tax Incl.)"
        )
