# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from unittest.mock import patch

from odoo.tests import HttpCase, new_test_user, tagged

STATEMENT_MODEL = "report.sale_referral_lifecycle.report_referral_statement"


@tagged("post_install", "-at_install")
class TestReferralTour(HttpCase):
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
