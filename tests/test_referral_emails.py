# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta
from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from ..models.referral.referral_notification import NOTIFICATION_CRON
from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestReferralEmails(WalletCommon):
    def _sponsor_messages(self, record, subject):
        return record.message_ids.filtered(
            lambda m: m.message_type == "comment"
            and self.sponsor in m.partner_ids
            and subject in (m.subject or "")
        )

    def test_credit_email_queued_by_the_confirmation(self):
        referral, _order = self._reward_referral("Queue Ltd")
        queued = self.env["referral.notification"].search(
            [("res_model", "=", "referral.referral"), ("res_id", "=", referral.id)]
        )
        self.assertEqual(len(queued), 1, "credit earned (it tells the win too)")
        self.assertEqual(queued.state, "queued")
        self.assertFalse(self._sponsor_messages(referral, "thank you for referring"))
        self.env["referral.notification"]._cron_send()
        self.assertEqual(queued.state, "sent")
        earned = self._sponsor_messages(referral, "thank you for referring Queue Ltd")
        self.assertEqual(len(earned), 1)
        self.assertIn("/my/wallet", earned.body)
        self.assertIn("120.00", earned.body)
        self.assertIn(self.currency.symbol, earned.body)
        self.env["referral.notification"]._cron_send()
        self.assertEqual(
            len(self._sponsor_messages(referral, "thank you for referring")), 1
        )

    def test_one_call_renders_a_bounded_batch_and_wakes_the_job(self):
        """A call renders at most its batch, reports it to the cron runner
        and wakes the job again for the rest, rather than holding the cron
        thread."""
        for name in ("Bound A Ltd", "Bound B Ltd", "Bound C Ltd"):
            self._reward_referral(name)
        Notification = self.env["referral.notification"]
        cron = self.env.ref(NOTIFICATION_CRON)
        queued = Notification.search_count([("state", "=", "queued")])
        self.assertGreaterEqual(queued, 3)
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        progress = self.env["ir.cron.progress"].sudo().create({"cron_id": cron.id})
        more = Notification.with_context(ir_cron_progress_id=progress.id)._cron_send(
            batch_size=2
        )
        self.assertTrue(more)
        self.assertEqual(
            Notification.search_count([("state", "=", "queued")]), queued - 2
        )
        self.assertEqual(progress.done, 2)
        self.assertEqual(progress.remaining, 0, "no immediate call in the same run")
        self.assertEqual(
            len(Trigger.search([("cron_id", "=", cron.id)]) - triggers),
            1,
            "the job is woken again for the rest",
        )
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        self.assertFalse(Notification._cron_send(batch_size=queued))
        self.assertFalse(Notification.search_count([("state", "=", "queued")]))
        self.assertFalse(Trigger.search([("cron_id", "=", cron.id)]) - triggers)

    def test_emails_wait_while_rewards_are_queued(self):
        """The single cron thread posts the credit first: while the lifecycle
        queue holds orders, a call renders nothing and comes back later."""
        self._reward_referral("Patient Ltd")
        Notification = self.env["referral.notification"]
        queued = Notification.search_count([("state", "=", "queued")])
        self.assertTrue(queued)
        self.env["partner.lifecycle.queue"]._enqueue(self.sponsor)
        cron = self.env.ref(NOTIFICATION_CRON)
        Trigger = self.env["ir.cron.trigger"].sudo()
        triggers = Trigger.search([("cron_id", "=", cron.id)])
        self.assertTrue(Notification._cron_send())
        self.assertEqual(Notification.search_count([("state", "=", "queued")]), queued)
        later = Trigger.search([("cron_id", "=", cron.id)]) - triggers
        self.assertEqual(len(later), 1)
        self.assertGreater(later.call_at, fields.Datetime.now())
        self._process_lifecycle_queue()
        Notification._cron_send()
        self.assertFalse(Notification.search_count([("state", "=", "queued")]))

    def test_won_email_when_the_reward_waits_for_the_payment(self):
        self.program.reward_trigger = "invoice_paid"
        referral, _order = self._reward_referral("Later Ltd")
        self.assertEqual(referral.state, "won")
        self.assertFalse(self._sponsor_messages(referral, "is now our customer"))
        self.env["referral.notification"]._cron_send()
        self.assertEqual(
            len(self._sponsor_messages(referral, "Later Ltd is now our customer")), 1
        )

    def test_expiry_reminder_once_per_credit(self):
        referral, _order = self._reward_referral("Expiring Ltd")
        credit = referral.transaction_ids.filtered(
            lambda t: t.transaction_type == "credit"
        )
        Notification = self.env["referral.notification"]
        self.assertFalse(self.Transaction._cron_send_expiry_reminders())
        later = credit.expiry_date - relativedelta(days=20)
        with freeze_time(fields.Date.to_string(later)):
            first = self.Transaction._cron_send_expiry_reminders()
            second = self.Transaction._cron_send_expiry_reminders()
        self.assertIn(credit.id, first.mapped("res_id"))
        self.assertFalse(second, "never twice for the same credit")
        Notification._cron_send()
        message = credit.message_ids.filtered(
            lambda m: "expires on" in (m.subject or "")
        )
        self.assertEqual(len(message), 1)
        self.assertIn(self.sponsor, message.partner_ids)
