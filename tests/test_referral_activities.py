# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralActivities(ReferralCommon):
    """The calls planned on a referral follow its state."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.call_sponsor = cls.env.ref(
            "sale_referral_lifecycle.mail_activity_type_referral_call_sponsor"
        )
        cls.call_prospect = cls.env.ref(
            "sale_referral_lifecycle.mail_activity_type_referral_call_prospect"
        )
        cls.reason = cls.env.ref(
            "sale_referral_lifecycle.referral_lost_reason_competitor"
        )

    def _summaries(self, referral):
        return sorted(referral.activity_ids.mapped("summary"))

    def test_won_and_rewarded_referral_keeps_no_call(self):
        referral = self._refer()
        self.assertEqual(len(referral.activity_ids), 2)
        self._confirm_order(referral.referee_id)
        self.assertRecordValues(referral, [{"state": "rewarded", "activity_ids": []}])

    def test_won_referral_keeps_only_the_approval_to_do(self):
        self.program.approval_required = True
        referral = self._refer()
        self._confirm_order(referral.referee_id)
        self.assertEqual(referral.state, "won")
        self.assertEqual(
            referral.activity_ids.activity_type_id,
            self.env.ref("mail.mail_activity_data_todo"),
        )

    def test_mark_as_contacted_closes_the_sponsor_call(self):
        referral = self._refer()
        referral.with_user(self.salesman).action_start()
        self.assertEqual(referral.state, "in_progress")
        self.assertEqual(referral.activity_ids.activity_type_id, self.call_prospect)
        done = referral.message_ids.filtered(
            lambda m: m.mail_activity_type_id == self.call_sponsor
        )
        self.assertEqual(len(done), 1)
        self.assertIn("Sponsor contacted", done.body)

    def test_reopen_plans_the_calls_again(self):
        referral = self._refer()
        referral.action_reject()
        self.assertFalse(referral.activity_ids)
        referral.with_user(self.salesman).action_reset()
        self.assertEqual(referral.state, "new")
        self.assertEqual(
            self._summaries(referral), ["Call the prospect", "Call the sponsor"]
        )
        self.assertEqual(referral.activity_ids.user_id, self.salesman)

    def test_mark_as_lost_asks_a_reason_shown_in_the_chatter(self):
        referral = self._refer()
        action = referral.with_user(self.salesman).action_open_lost_wizard()
        self.assertEqual(action["res_model"], "referral.lost.wizard")
        wizard_form = Form(
            self.env["referral.lost.wizard"]
            .with_user(self.salesman)
            .with_context(**action["context"])
        )
        with self.assertRaises(AssertionError):
            wizard_form.save()  # the reason is required
        wizard_form.lost_reason_id = self.reason
        wizard_form.lost_feedback = "<p>Signed with their usual supplier.</p>"
        wizard_form.save().action_lost_reason_apply()
        self.env.flush_all()
        self.env.cr.precommit.run()  # tracking
        self.assertRecordValues(
            referral,
            [{"state": "lost", "lost_reason_id": self.reason.id, "activity_ids": []}],
        )
        tracking = referral.message_ids.tracking_value_ids.filtered(
            lambda t: t.field_id.name == "lost_reason_id"
        )
        self.assertEqual(tracking.new_value_char, self.reason.name)
        self.assertIn(
            "Signed with their usual supplier",
            "".join(referral.message_ids.mapped("body")),
        )
        self.assertEqual(self.reason.referral_count, 1)
        referral.action_reset()
        self.assertFalse(referral.lost_reason_id)

    def test_mark_as_lost_refused_on_a_closed_referral(self):
        referral = self._refer()
        referral.action_reject()
        with self.assertRefused(UserError, "Only new or in-progress"):
            referral.action_open_lost_wizard()
        with self.assertRefused(UserError, "Only new or in-progress"):
            referral.action_mark_lost(lost_reason_id=self.reason.id)
        self.assertRecordValues(
            referral, [{"state": "rejected", "lost_reason_id": False}]
        )

    def test_lost_reasons_of_another_company_are_hidden(self):
        Reason = self.env["referral.lost.reason"]
        theirs = Reason.create(
            {"name": "Other company reason", "company_id": self.other_company.id}
        )
        self.assertIn(theirs, Reason.with_user(self.salesman).search([]))
        self.assertNotIn(theirs, Reason.with_user(self.salesman_2).search([]))

    def test_plan_texts_in_the_salesperson_language(self):
        """Plan templates are not translatable: the calls take the texts of
        their activity types, in the language of the salesperson."""
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(
            ["sale_referral_lifecycle"], ["fr_FR"], overwrite=True
        )
        self.salesman.lang = "fr_FR"
        referral = self._refer()
        self.assertEqual(
            self._summaries(referral), ["Appeler le parrain", "Appeler le prospect"]
        )
        note = referral.activity_ids.filtered(
            lambda a: a.activity_type_id == self.call_sponsor
        ).note
        self.assertIn("Remerciez le parrain", note)
