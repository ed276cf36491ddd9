# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models

# Sponsors are reminded of their credit this many days before it expires.
EXPIRY_REMINDER_DAYS = 30


class ReferralReferral(models.Model):
    """Emails of a referral's life, queued (never rendered within the order
    confirmation that triggers them)."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    def _action_won(self, orders):
        res = super()._action_won(orders)
        # Rewarded at confirmation (by the lifecycle queue's job): the credit
        # email tells the news, else the job queues this one.
        self.filtered(
            lambda r: r.program_id.reward_trigger != "order_confirmed"
        )._queue_won_email()
        return res

    def _queue_won_email(self):
        """Tell the sponsors of the referrals still won (not rewarded) that
        their referral ordered."""
        return self.env["referral.notification"]._queue(
            self.filtered(lambda r: r.state == "won"),
            "sale_referral_lifecycle.mail_template_referral_won",
        )


class ReferralWalletTransaction(models.Model):
    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "referral.wallet.transaction"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _cron_send_expiry_reminders(self):
        """Daily: queue, once per credit, the reminder of the credit that
        expires within 30 days and is not spent yet."""
        today = fields.Date.context_today(self)
        expiring = self.sudo().search(
            [
                ("state", "=", "posted"),
                ("transaction_type", "=", "credit"),
                ("remaining_amount", ">", 0),
                ("expiry_date", ">=", today),
                (
                    "expiry_date",
                    "<=",
                    today + relativedelta(days=EXPIRY_REMINDER_DAYS),
                ),
            ],
            order="expiry_date, id",
        )
        return self.env["referral.notification"]._queue(
            expiring, "sale_referral_lifecycle.mail_template_referral_credit_expiring"
        )
