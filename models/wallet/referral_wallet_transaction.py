# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import format_date

from ..cron_batches import defer_on_conflict

# Fields the ledger itself keeps up to date on posted transactions.
LEDGER_FIELDS = {"remaining_amount", "account_move_id"}
APPROVER_GROUP = "sale_referral_lifecycle.group_referral_reward_approver"
# Sponsors are reminded by email of their credit this many days before it
# expires; their portal and statement show what expires within the longer
# warning period.
EXPIRY_REMINDER_DAYS = 30
EXPIRY_WARNING_DAYS = 60


class ReferralWalletTransaction(models.Model):
    _name = "referral.wallet.transaction"
    _inherit = ["mail.thread"]
    _description = "Referral Credit Transaction"
    _order = "date desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Recorded Text",
        required=True,
        tracking=True,
        help="The text recorded with the movement, in the language of whoever "
        "posted it; the Description shows it in each reader's language.",
    )
    description = fields.Char(
        compute="_compute_description",
        help="What the movement is, in the reader's language: told from its "
        "type and the referral or document it comes from; a manual "
        "adjustment shows the reason typed.",
    )
    transaction_type = fields.Selection(
        [
            ("credit", "Credit"),
            ("debit", "Debit"),
            ("expiry", "Expiry"),
            ("adjustment", "Adjustment"),
            ("reversal", "Reversal"),
        ],
        string="Type",
        required=True,
        readonly=True,
        index=True,
    )
    direction = fields.Selection(
        [("in", "Credit added"), ("out", "Credit spent")],
        compute="_compute_direction",
        store=True,
        readonly=False,
        precompute=True,
        required=True,
        help="Whether the transaction adds credit to the wallet or removes it.",
    )
    state = fields.Selection(
        [
            ("pending", "Pending Approval"),
            ("posted", "Posted"),
            ("cancelled", "Cancelled"),
        ],
        string="Status",
        default="posted",
        required=True,
        readonly=True,
        tracking=True,
        index=True,
    )
    date = fields.Date(
        required=True, default=fields.Date.context_today, readonly=True, index=True
    )
    amount = fields.Monetary(
        required=True, readonly=True, currency_field="currency_id", tracking=True
    )
    signed_amount = fields.Monetary(
        compute="_compute_signed_amount",
        store=True,
        currency_field="currency_id",
        help="Positive when the transaction adds credit, negative when it "
        "spends it.",
    )
    remaining_amount = fields.Monetary(
        readonly=True,
        currency_field="currency_id",
        help="Part of this credit not spent nor expired yet; credit is spent "
        "oldest expiry first.",
    )
    expiry_date = fields.Date(
        readonly=True,
        index="btree_not_null",
        help="Unused credit is removed on this date. Empty: never expires.",
    )
    reason = fields.Text(readonly=True, help="Why a manager adjusted the wallet.")
    wallet_id = fields.Many2one(
        "referral.wallet",
        required=True,
        readonly=True,
        index=True,
        ondelete="restrict",
        check_company=True,
    )
    partner_id = fields.Many2one(
        related="wallet_id.partner_id", string="Sponsor", store=True, index=True
    )
    company_id = fields.Many2one(related="wallet_id.company_id", store=True, index=True)
    currency_id = fields.Many2one(related="wallet_id.currency_id")
    referral_id = fields.Many2one(
        "referral.referral",
        readonly=True,
        index="btree_not_null",
        check_company=True,
        ondelete="restrict",
    )
    sale_order_line_id = fields.Many2one(
        "sale.order.line",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
    )
    sale_order_id = fields.Many2one(
        "sale.order",
        string="Sales Order",
        readonly=True,
        index="btree_not_null",
        ondelete="restrict",
        help="Kept when the order line is deleted, for the audit trail.",
    )
    invoice_id = fields.Many2one(
        "account.move",
        readonly=True,
        index="btree_not_null",
        check_company=True,
        ondelete="restrict",
    )
    move_line_id = fields.Many2one(
        "account.move.line",
        string="Invoice Line",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="Credit line of the invoice or credit note this transaction "
        "spends or gives back for.",
    )
    reversed_transaction_id = fields.Many2one(
        "referral.wallet.transaction",
        readonly=True,
        index="btree_not_null",
        ondelete="restrict",
        help="Transaction this one reverses (or, for an expiry, the credit "
        "that expired).",
    )
    reversal_ids = fields.One2many(
        "referral.wallet.transaction", "reversed_transaction_id", string="Reversals"
    )
    account_move_id = fields.Many2one(
        "account.move",
        string="Journal Entry",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
        check_company=True,
        help="Entry the ledger posted with this transaction (rewards, expiry, "
        "adjustments and their reversals). Credit spent on documents is "
        "booked by their credit lines.",
    )

    @api.depends("transaction_type", "reversed_transaction_id")
    def _compute_direction(self):
        for transaction in self:
            if transaction.transaction_type == "credit":
                transaction.direction = "in"
            elif transaction.transaction_type in ("debit", "expiry"):
                transaction.direction = "out"
            elif (
                transaction.transaction_type == "reversal"
                and transaction.reversed_transaction_id
            ):
                transaction.direction = (
                    "in"
                    if transaction.reversed_transaction_id.direction == "out"
                    else "out"
                )
            else:
                transaction.direction = transaction.direction or "in"

    @api.depends_context("lang")
    @api.depends(
        "transaction_type",
        "name",
        "reason",
        "referral_id",
        "sale_order_id",
        "invoice_id",
        "reversed_transaction_id",
    )
    def _compute_description(self):
        for transaction in self:
            transaction.description = transaction._get_description()

    @api.depends_context("lang")
    @api.depends("description")
    def _compute_display_name(self):
        for transaction in self:
            transaction.display_name = transaction.description

    @api.depends("amount", "direction")
    def _compute_signed_amount(self):
        for transaction in self:
            sign = 1 if transaction.direction == "in" else -1
            transaction.signed_amount = sign * transaction.amount

    @api.constrains("amount", "remaining_amount")
    def _check_amounts(self):
        for transaction in self:
            if transaction.currency_id.compare_amounts(transaction.amount, 0) <= 0:
                raise ValidationError(
                    self.env._(
                        "The amount of a credit transaction must be positive; "
                        "the type says whether it adds or spends credit."
                    )
                )
            if transaction.remaining_amount < 0 or (
                transaction.currency_id.compare_amounts(
                    transaction.remaining_amount, transaction.amount
                )
                > 0
            ):
                raise ValidationError(
                    self.env._(
                        "The remaining credit of %(transaction)s must lie between "
                        "0 and its amount.",
                        transaction=transaction.name,
                    )
                )

    @api.constrains("transaction_type", "reason")
    def _check_adjustment_reason(self):
        for transaction in self:
            if (
                transaction.transaction_type == "adjustment"
                and not (transaction.reason or "").strip()
            ):
                raise ValidationError(self.env._("A manual adjustment needs a reason."))

    @api.model_create_multi
    def create(self, vals_list):
        lines = self.env["sale.order.line"].browse(
            [
                vals["sale_order_line_id"]
                for vals in vals_list
                if vals.get("sale_order_line_id")
            ]
        )
        order_by_line = {line.id: line.order_id.id for line in lines}
        move_lines = self.env["account.move.line"].browse(
            [vals["move_line_id"] for vals in vals_list if vals.get("move_line_id")]
        )
        move_by_line = {line.id: line.move_id.id for line in move_lines}
        for vals in vals_list:
            if not vals.get("name"):
                vals["name"] = self._default_name(vals.get("transaction_type"))
            if vals.get("sale_order_line_id") and not vals.get("sale_order_id"):
                vals["sale_order_id"] = order_by_line[vals["sale_order_line_id"]]
            if vals.get("move_line_id") and not vals.get("invoice_id"):
                vals["invoice_id"] = move_by_line[vals["move_line_id"]]
        transactions = super().create(vals_list)
        # Booked with the transaction, by the ledger.
        self.env["referral.ledger"]._book_transactions(transactions)
        return transactions

    def write(self, vals):
        # No access right allows writing transactions: say so first.
        self.check_access("write")
        frozen = self.filtered(lambda t: t.state != "pending")
        if frozen and (set(vals) - LEDGER_FIELDS or not self.env.su):
            raise UserError(
                self.env._(
                    "Posted or cancelled credit transactions cannot be changed "
                    "(%(transactions)s). Record a reversal or an adjustment "
                    "instead.",
                    transactions=", ".join(frozen.mapped("name")),
                )
            )
        posting = (
            self.filtered(lambda t: t.state == "pending")
            if vals.get("state") == "posted"
            else self.browse()
        )
        res = super().write(vals)
        if posting:
            # An approved reward is booked when it is posted.
            self.env["referral.ledger"]._book_transactions(posting)
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_except_posted(self):
        if self.filtered(lambda t: t.state != "pending"):
            raise UserError(
                self.env._(
                    "Posted or cancelled credit transactions are kept for the "
                    "audit trail; reverse a posted one instead."
                )
            )

    def _get_description(self):
        """The movement in words, in the language of the environment: from
        its type and origin (referral, order, invoice, the transaction it
        reverses or expires), else its stored text."""
        self.ensure_one()
        # sudo: whoever reads the movement reads what it comes from (the
        # referral or order may be another salesperson's).
        transaction = self.sudo()
        kind = transaction.transaction_type
        document = transaction.invoice_id or transaction.sale_order_id
        origin = transaction.reversed_transaction_id
        if kind == "adjustment":
            reason = (transaction.reason or "").strip().splitlines()
            if reason:
                return self.env._("Adjustment: %(reason)s", reason=reason[0][:100])
        elif kind == "credit" and transaction.referral_id:
            return self.env._(
                "Reward for referring %(referee)s (%(referral)s)",
                referee=transaction.referral_id.referee_id.display_name,
                referral=transaction.referral_id.name,
            )
        elif kind == "debit" and document:
            return self.env._("Credit spent on %(document)s", document=document.name)
        elif kind == "reversal" and document:
            if transaction.invoice_id.move_type == "out_refund":
                return self.env._(
                    "Credit restored by %(document)s", document=document.name
                )
            return self.env._("Credit released by %(document)s", document=document.name)
        elif kind == "reversal" and origin:
            return self.env._(
                "Reversal of %(name)s", name=origin.with_env(self.env).description
            )
        elif kind == "expiry" and origin:
            return self.env._(
                "Expiry of %(name)s (%(date)s)",
                name=origin.with_env(self.env).description,
                date=format_date(self.env, origin.expiry_date),
            )
        return transaction.name

    def _default_name(self, transaction_type):
        labels = dict(self._fields["transaction_type"]._description_selection(self.env))
        return labels.get(transaction_type) or self.env._("Transaction")

    def _check_approver(self):
        if not self.env.su and not self.env.user.has_group(APPROVER_GROUP):
            raise AccessError(
                self.env._(
                    "Only reward approvers can approve, cancel or reverse "
                    "referral credit."
                )
            )

    def action_approve(self):
        """Post pending rewards (reward approvers)."""
        self._check_approver()
        pending = self.filtered(lambda t: t.state == "pending")
        # sudo: the approver checked above; transactions are never writable
        # through the access rules.
        pending.sudo().write({"state": "posted"})
        pending.referral_id._on_reward_posted(pending)
        self.env["mail.activity"].sudo().search(
            [
                ("res_model", "=", "referral.referral"),
                ("res_id", "in", pending.referral_id.ids),
                (
                    "activity_type_id",
                    "=",
                    self.env.ref("mail.mail_activity_data_todo").id,
                ),
                ("summary", "=", self._approval_summary()),
            ]
        ).action_feedback(feedback=self.env._("Reward approved."))
        return True

    def action_cancel(self):
        """Cancel pending rewards (reward approvers)."""
        self._check_approver()
        pending = self.filtered(lambda t: t.state == "pending")
        pending.sudo().write({"state": "cancelled"})
        # The approver's decision stands: the ledger does not grant the
        # reward of these referrals again.
        pending.referral_id.sudo()._flow_write({"reward_refused": True})
        return True

    def action_reverse(self):
        """Reverse what remains of posted transactions (reward approvers).
        What documents spend follows the documents: change or cancel them."""
        self._check_approver()
        linked = self.filtered(
            lambda t: t.sale_order_id or t.sale_order_line_id or t.invoice_id
        )
        if linked:
            raise UserError(
                self.env._(
                    "%(transactions)s follow their sales orders or invoices: "
                    "cancel, reset or refund the document to give the credit "
                    "back, or adjust the wallet.",
                    transactions=", ".join(linked.mapped("name")),
                )
            )
        return self.sudo()._reverse()

    def _approval_summary(self):
        return self.env._("Approve the referral reward")

    def _reverse(self, amount=None, **values):
        """Reverse posted transactions: a credit loses what remains of it, a
        debit gives back ``amount`` (default: what it did not give back
        yet). Returns the reversals (none when nothing is left to reverse)."""
        # sudo: the ledger maintains the remaining amounts of posted credit,
        # which no access right allows to write.
        reversals = self.sudo().browse()
        for transaction in self.sudo().filtered(lambda t: t.state == "posted"):
            transaction.wallet_id._lock()
            currency = transaction.currency_id
            if (
                transaction.direction == "out"
                and transaction.transaction_type != "expiry"
            ):
                reversals |= transaction._reverse_spending(amount, **values)
                continue
            if transaction.direction == "in":
                transaction.invalidate_recordset(["remaining_amount"])
                left = transaction.remaining_amount
            else:
                given_back = sum(
                    transaction.reversal_ids.filtered(
                        lambda r: r.state == "posted"
                    ).mapped("amount")
                )
                left = transaction.amount - given_back
            to_reverse = currency.round(
                min(left, amount) if amount is not None else left
            )
            if currency.compare_amounts(to_reverse, 0) <= 0:
                continue
            if transaction.direction == "in":
                transaction.remaining_amount = currency.round(
                    transaction.remaining_amount - to_reverse
                )
            reversals |= reversals.create(
                {
                    "wallet_id": transaction.wallet_id.id,
                    "transaction_type": "reversal",
                    "reversed_transaction_id": transaction.id,
                    "amount": to_reverse,
                    "remaining_amount": (
                        to_reverse if transaction.direction == "out" else 0.0
                    ),
                    "expiry_date": (
                        transaction.expiry_date
                        if transaction.direction == "out"
                        else False
                    ),
                    "name": self.env._("Reversal of %(name)s", name=transaction.name),
                    "referral_id": transaction.referral_id.id,
                    **values,
                }
            )
        return reversals.with_env(self.env)

    def _reverse_spending(self, amount=None, **values):
        """Give back ``amount`` (default: what is not given back yet) of this
        spending outside any document, restoring the credits it consumed."""
        self.ensure_one()
        currency = self.currency_id
        given_back = sum(
            self.reversal_ids.filtered(lambda r: r.state == "posted").mapped("amount")
        )
        left = self.amount - given_back
        to_reverse = currency.round(min(left, amount) if amount is not None else left)
        if currency.compare_amounts(to_reverse, 0) <= 0:
            return self.browse()
        reversal = self.wallet_id._give_back(
            to_reverse,
            holder=self,
            **{
                "name": self.env._("Reversal of %(name)s", name=self.name),
                "referral_id": self.referral_id.id,
                **values,
            },
        )
        self.wallet_id._expire_overdue_credits()
        self.env["referral.ledger"]._revoke_restored_rewards(reversal)
        return reversal

    @api.model
    def _overdue_domain(self, wallets=None):
        """Posted credit with an unused part past its expiry date."""
        domain = [
            ("state", "=", "posted"),
            ("direction", "=", "in"),
            ("remaining_amount", ">", 0),
            ("expiry_date", "<", fields.Date.context_today(self)),
        ]
        if wallets is not None:
            domain.append(("wallet_id", "in", wallets.ids))
        return domain

    def _expire(self):
        """Remove the unused part of these credits (their wallets are locked)
        with ``expiry`` transactions; returns them."""
        # Re-read after the lock: a redemption may have spent them meanwhile.
        self.invalidate_recordset(["remaining_amount"])
        expired = self.sudo().filtered(lambda c: c.remaining_amount > 0)
        vals_list = [
            {
                "wallet_id": credit.wallet_id.id,
                "transaction_type": "expiry",
                "amount": credit.remaining_amount,
                "reversed_transaction_id": credit.id,
                "referral_id": credit.referral_id.id,
                "name": self.env._(
                    "Expiry of %(name)s (%(date)s)",
                    name=credit.name,
                    date=credit.expiry_date,
                ),
            }
            for credit in expired
        ]
        expired.write({"remaining_amount": 0.0})
        return expired.create(vals_list)

    @api.model
    @defer_on_conflict("sale_referral_lifecycle.ir_cron_expire_referral_credit")
    def _cron_expire_credits(self, batch_size=1000):
        """Daily: remove the unused part of credit past its expiry date with
        ``expiry`` transactions, one batch of credits per call."""
        domain = self._overdue_domain()
        # sudo: the ledger maintains the remaining amounts of posted credit.
        expired = self.sudo().search(domain, limit=batch_size, order="wallet_id, id")
        expired.wallet_id._lock()
        expired._expire()
        remaining = self.sudo().search_count(domain)
        self.env["ir.cron"]._notify_progress(done=len(expired), remaining=remaining)
        return remaining

    # ------------------------------------------------------------------
    # Expiry reminders
    # ------------------------------------------------------------------

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
