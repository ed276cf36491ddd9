# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralSponsorRefusal(ReferralCommon):
    """Refer a Company says who may not sponsor before anything is typed."""

    def _open_wizard(self, partner):
        return Form(
            self.env["referral.create.wizard"]
            .with_user(self.salesman)
            .with_context(active_model="res.partner", active_id=partner.id)
        )

    def test_customer_may_refer(self):
        partner = self.sponsor_contact.with_user(self.salesman)
        self.assertFalse(partner.referral_sponsor_refusal)
        action = partner.action_refer_company()
        self.assertEqual(action["res_model"], "referral.create.wizard")
        self.assertEqual(
            self._open_wizard(self.sponsor_contact).sponsor_id, self.sponsor
        )

    def test_prospect_refused_with_the_reason_before_the_wizard_opens(self):
        prospect = self._create_customer("Not Yet Customer", user_id=self.salesman.id)
        prospect = prospect.with_user(self.salesman)
        self.assertIn("only customers", prospect.referral_sponsor_refusal)
        count = self.Referral.search_count([])
        with self.assertRefused(UserError, "Not Yet Customer may not sponsor yet"):
            prospect.action_refer_company()
        # Opened from the contact's Actions menu.
        with self.assertRefused(UserError, "only customers with a confirmed"):
            self._open_wizard(prospect)
        self.assertEqual(self.Referral.search_count([]), count)

    def test_stage_policy_names_the_stages(self):
        stage = self.env.ref("sale_referral_lifecycle.stage_fan")
        self.program.write({"sponsor_policy": "stages", "sponsor_stage_ids": stage})
        self.assertIn(stage.name, self.sponsor.referral_sponsor_refusal)
        self.program.sponsor_policy = "any"
        self.sponsor.invalidate_recordset(["referral_sponsor_refusal"])
        self.assertFalse(self.sponsor.referral_sponsor_refusal)
