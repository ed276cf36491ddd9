# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import HttpCase, new_test_user, tagged


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
