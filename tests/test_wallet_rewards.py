# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import fields
from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletRewards(WalletCommon):
    def _credits(self, referral):
        return referral.transaction_ids.filtered(
            lambda t: t.transaction_type == "credit"
        )

    def test_percent_reward_credited_on_first_order(self):
        referral, order = self._reward_referral("Percent Ltd", price=1200.0)
        today = fields.Date.context_today(self.Transaction)
        self.assertEqual(referral.state, "rewarded")
        self.assertTrue(referral.date_rewarded)
        self.assertRecordValues(
            self._credits(referral),
            [
                {
                    "amount": 120.0,
                    "signed_amount": 120.0,
                    "remaining_amount": 120.0,
                    "state": "posted",
                    "direction": "in",
                    "partner_id": self.sponsor.id,
                    "expiry_date": today + relativedelta(months=12),
                }
            ],
        )
        wallet = self._wallet()
        self.assertEqual(wallet.balance, 120.0)
        self.assertEqual(referral.reward_amount, 120.0)
        self.assertEqual(self.sponsor.referral_credit_balance, 120.0)
        self.assertEqual(self.sponsor_contact.referral_credit_balance, 120.0)

    def test_percent_reward_is_capped(self):
        self.program.reward_max_amount = 50.0
        referral, _order = self._reward_referral("Capped Ltd", price=1200.0)
        self.assertEqual(self._credits(referral).amount, 50.0)

    def test_fixed_reward_ignores_order_amount(self):
        self.program.write({"reward_type": "fixed", "reward_fixed_amount": 75.0})
        referral, _order = self._reward_referral("Fixed Ltd", price=9999.0)
        self.assertEqual(self._credits(referral).amount, 75.0)

    def test_yearly_cap_limits_then_stops_rewards(self):
        self.program.yearly_cap_amount = 150.0
        first, _order = self._reward_referral("First Ltd", price=1200.0)
        second, _order = self._reward_referral("Second Ltd", price=1200.0)
        third, _order = self._reward_referral("Third Ltd", price=1200.0)
        self.assertEqual(self._credits(first).amount, 120.0)
        self.assertEqual(self._credits(second).amount, 30.0)
        self.assertFalse(self._credits(third))
        self.assertEqual(third.state, "won")
        self.assertIn("yearly cap", third.message_ids[0].body)
        self.assertEqual(self._wallet().balance, 150.0)

    def test_reward_of_order_in_foreign_currency_uses_company_currency(self):
        foreign = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search(
                [("id", "!=", self.currency.id), ("name", "in", ("EUR", "USD"))],
                limit=1,
            )
        )
        foreign.active = True
        self.env["res.currency.rate"].create(
            {
                "currency_id": foreign.id,
                "company_id": self.company.id,
                # Today's rate wins over older ones (demo data has some); the
                # order converts at the rate of its own date, a UTC datetime.
                "name": fields.Date.today(),
                "rate": 2.0 * self.currency.rate,
            }
        )
        pricelist = self.env["product.pricelist"].create(
            {"name": "Foreign", "currency_id": foreign.id}
        )
        referral, order = self._reward_referral(
            "Foreign Ltd", price=1200.0, pricelist_id=pricelist.id
        )
        self.assertEqual(order.currency_id, foreign)
        self.assertEqual(order.amount_untaxed, 1200.0)
        # 1,200 in a currency worth half the company's: 600, 10% of it.
        self.assertEqual(self._credits(referral).amount, 60.0)

    def test_reward_granted_once(self):
        referral, _order = self._reward_referral("Once Ltd")
        self._confirm_order(referral.referee_id)
        referral._grant_rewards()
        self.assertEqual(len(self._credits(referral)), 1)
        self.assertEqual(self._wallet().balance, 120.0)

    def test_reward_posted_by_the_queue_job_once(self):
        """Not within the confirmation: the lifecycle queue's job posts it,
        once, however often the order is queued and the job runs."""
        referral = self._refer(referee_company_name="Queued Reward Ltd")
        order = self._create_order(referral.referee_id)
        order.action_confirm()
        self.assertEqual(referral.state, "won")
        self.assertFalse(referral.transaction_ids)
        self.assertFalse(self._wallet().balance)
        self._process_lifecycle_queue()
        self.assertEqual(referral.state, "rewarded")
        self.env["partner.lifecycle.queue"]._enqueue_orders(order, "sale")
        self._process_lifecycle_queue()
        self.assertEqual(len(self._credits(referral)), 1)
        self.assertEqual(self._wallet().balance, 120.0)

    def test_order_cancelled_before_the_job_earns_nothing(self):
        referral = self._refer(referee_company_name="Quick Cancel Ltd")
        order = self._create_order(referral.referee_id)
        order.action_confirm()
        order._action_cancel()
        self._process_lifecycle_queue()
        self.assertEqual(referral.state, "in_progress")
        self.assertFalse(referral.transaction_ids)
        self.assertFalse(self._wallet().balance)

    def test_invoice_paid_trigger_waits_at_confirmation(self):
        self.program.reward_trigger = "invoice_paid"
        referral, _order = self._reward_referral("Later Ltd")
        self.assertEqual(referral.state, "won")
        self.assertFalse(referral.transaction_ids)

    def test_credit_without_validity_never_expires(self):
        self.program.credit_validity_months = 0
        referral, _order = self._reward_referral("Forever Ltd")
        self.assertFalse(self._credits(referral).expiry_date)

    def test_sponsor_is_emailed(self):
        referral, _order = self._reward_referral("Mail Ltd")
        # Queued by the confirmation, rendered by the cron.
        self.env["referral.notification"]._cron_send()
        message = referral.message_ids.filtered(
            lambda m: m.message_type == "comment" and self.sponsor in m.partner_ids
        )
        self.assertEqual(len(message), 1)
        self.assertIn("thank you for referring Mail Ltd", message.subject)
        self.assertIn("120.00", message.body)

    def test_approval_path(self):
        self.program.approval_required = True
        referral, _order = self._reward_referral("Pending Ltd")
        credit = self._credits(referral)
        wallet = self._wallet()
        self.assertEqual(credit.state, "pending")
        self.assertEqual(referral.state, "won")
        self.assertEqual(wallet.balance, 0.0)
        self.assertEqual(wallet.pending_amount, 120.0)
        activity = referral.activity_ids.filtered(lambda a: a.user_id == self.approver)
        self.assertEqual(len(activity), 1)
        with self.assertRefused(AccessError, "reward approvers"):
            credit.with_user(self.sale_manager).action_approve()
        credit.with_user(self.approver).action_approve()
        self.assertEqual(credit.state, "posted")
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(wallet.balance, 120.0)
        self.assertFalse(activity.exists())

    def test_approver_cancels_pending_reward(self):
        self.program.approval_required = True
        referral, _order = self._reward_referral("Refused Ltd")
        credit = self._credits(referral)
        credit.with_user(self.approver).action_cancel()
        self.assertEqual(credit.state, "cancelled")
        self.assertEqual(self._wallet().pending_amount, 0.0)

    def test_revoke_reverses_unspent_part_and_notes_spent_part(self):
        referral, order = self._reward_referral("Revoked Ltd")
        wallet = self._wallet()
        wallet._debit(50.0, name="Spent on a renewal")
        # Rewards follow the referee's documents: cancelling its first order
        # revokes the reward.
        order._action_cancel()
        credit = self._credits(referral)
        reversal = credit.reversal_ids
        self.assertRecordValues(
            reversal,
            [{"transaction_type": "reversal", "amount": 70.0, "signed_amount": -70.0}],
        )
        self.assertEqual(credit.remaining_amount, 0.0)
        self.assertEqual(wallet.balance, 0.0)
        self.assertRecordValues(
            referral, [{"state": "in_progress", "first_order_id": False}]
        )
        self.assertIn("already spent or lost", referral.message_ids[0].body)

    def test_program_refuses_bad_settings(self):
        with self.assertRefused(ValidationError, "between 0 and 100"):
            self.program.reward_percent = 150
        with self.assertRefused(ValidationError, "cannot be negative"):
            self.program.credit_validity_months = -1
