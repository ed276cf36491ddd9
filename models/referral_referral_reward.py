# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.tools import format_amount

from .referral_wallet_transaction import APPROVER_GROUP


class ReferralReferral(models.Model):
    """The sponsor's reward: granted when the referral is won (posted or
    waiting for approval), revoked when the first order is cancelled or
    refunded."""

    # One concern per file (see the docstring); merged by the ORM.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    def _grant_rewards(self):
        """Credit the sponsors of these won referrals, once per referral:
        posted, or pending with an activity for the approvers."""
        # sudo: the reward is earned whoever confirms the order or registers
        # the payment; wallets are not writable through access rights.
        referrals = self.sudo().filtered(
            lambda r: r.state == "won"
            and r.first_order_id
            and not r.transaction_ids._get_live_rewards()
        )
        if not referrals:
            return self.env["referral.wallet.transaction"]
        wallets = self.env["referral.wallet"].browse()
        for company in referrals.company_id:
            wallets |= self.env["referral.wallet"]._get_or_create(
                referrals.filtered(lambda r, c=company: r.company_id == c).sponsor_id,
                company,
            )
        wallet_by_key = {(w.partner_id, w.company_id): w.sudo() for w in wallets}
        earned = self._read_earned_this_year(wallets)
        today = fields.Date.context_today(self)
        vals_list = []
        for referral in referrals:
            wallet = wallet_by_key[(referral.sponsor_id, referral.company_id)]
            program = referral.program_id
            amount = program._compute_reward_amount(
                referral.first_order_id, earned[wallet.id]
            )
            if referral.currency_id.is_zero(amount):
                referral.message_post(
                    body=self.env._(
                        "No credit earned for this referral: the reward is zero "
                        "or the sponsor reached the program's yearly cap."
                    )
                )
                continue
            earned[wallet.id] += amount
            vals_list.append(referral._prepare_reward_values(wallet, amount, today))
        transactions = self.env["referral.wallet.transaction"].sudo().create(vals_list)
        posted = transactions.filtered(lambda t: t.state == "posted")
        posted.referral_id._on_reward_posted(posted)
        (transactions - posted).referral_id._schedule_reward_approval()
        return transactions

    def _prepare_reward_values(self, wallet, amount, date):
        self.ensure_one()
        program = self.program_id
        return {
            "wallet_id": wallet.id,
            "transaction_type": "credit",
            "amount": amount,
            "remaining_amount": amount,
            "state": "pending" if program.approval_required else "posted",
            "date": date,
            "expiry_date": program._get_credit_expiry_date(date),
            "referral_id": self.id,
            "name": self.env._(
                "Reward for referring %(referee)s (%(referral)s)",
                referee=self.referee_id.display_name,
                referral=self.name,
            ),
        }

    @api.model
    def _read_earned_this_year(self, wallets):
        """Credit earned (posted or pending) by ``wallets`` since January 1st,
        net of the rewards revoked since."""
        year_start = fields.Date.context_today(self).replace(month=1, day=1)
        earned = dict.fromkeys(wallets.ids, 0.0)
        Transaction = self.env["referral.wallet.transaction"].sudo()
        rewards = [
            ("wallet_id", "in", wallets.ids),
            ("transaction_type", "=", "credit"),
            ("state", "in", ("posted", "pending")),
            ("date", ">=", year_start),
        ]
        for wallet, amount in Transaction._read_group(
            rewards, ["wallet_id"], ["amount:sum"]
        ):
            earned[wallet.id] += amount
        for wallet, amount in Transaction._read_group(
            [
                ("transaction_type", "=", "reversal"),
                ("state", "=", "posted"),
            ]
            + [("reversed_transaction_id." + leaf[0], *leaf[1:]) for leaf in rewards],
            ["wallet_id"],
            ["amount:sum"],
        ):
            earned[wallet.id] -= amount
        return earned

    def _on_reward_posted(self, transactions):
        """Mark the referrals rewarded and tell their sponsors (the email is
        queued: not rendered within the confirmation or payment)."""
        self.sudo().with_context(referral_action=True).write({"state": "rewarded"})
        self.env["referral.notification"]._queue(
            self, "sale_referral_lifecycle.mail_template_referral_reward"
        )

    def _schedule_reward_approval(self):
        """One to-do per reward approver of the company on each referral."""
        group = self.env.ref(APPROVER_GROUP, raise_if_not_found=False)
        summary = self.env["referral.wallet.transaction"]._approval_summary()
        for referral in self.sudo():
            approvers = (
                group.users.filtered(
                    lambda u, r=referral: r.company_id in u.company_ids
                )
                if group
                else self.env["res.users"]
            )
            for approver in approvers:
                referral.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=summary,
                    note=self.env._(
                        "Approve or cancel the pending reward of %(amount)s in "
                        "the Reward Transactions tab.",
                        amount=format_amount(
                            self.env, referral.reward_amount, referral.currency_id
                        ),
                    ),
                    user_id=approver.id,
                )

    def _revoke_rewards(self, reason):
        """The referee's first order was cancelled or refunded: cancel pending
        rewards, reverse what remains of posted ones, note on the chatter what
        the sponsor already spent, and reopen the referral."""
        referrals = self.sudo().filtered(lambda r: r.state in ("won", "rewarded"))
        for referral in referrals:
            rewards = referral.transaction_ids._get_live_rewards()
            rewards.filtered(lambda t: t.state == "pending").write(
                {"state": "cancelled"}
            )
            posted = rewards.filtered(lambda t: t.state == "posted")
            spent = sum(posted.mapped("remaining_amount"))
            spent = sum(posted.mapped("amount")) - spent
            posted._reverse()
            body = self.env._("The reward was revoked: %(reason)s", reason=reason)
            if not referral.currency_id.is_zero(spent):
                body = self.env._(
                    "%(body)s The sponsor had already spent or lost %(amount)s of "
                    "it: a manager decides whether to adjust its wallet.",
                    body=body,
                    amount=format_amount(self.env, spent, referral.currency_id),
                )
            referral.message_post(body=body)
        referrals.with_context(referral_action=True).write(
            {
                "state": "in_progress",
                "first_order_id": False,
                "date_won": False,
                "date_rewarded": False,
            }
        )
