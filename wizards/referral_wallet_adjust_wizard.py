# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError

APPROVER_GROUP = "sale_referral_lifecycle.group_referral_reward_approver"
# Accountants post adjustments too, as they post journal entries.
ACCOUNTANT_GROUP = "account.group_account_user"


class ReferralWalletAdjustWizard(models.TransientModel):
    _name = "referral.wallet.adjust.wizard"
    _description = "Adjust a Referral Credit Wallet"

    direction = fields.Selection(
        [("in", "Add credit"), ("out", "Remove credit")],
        default="in",
        required=True,
    )
    amount = fields.Monetary(required=True, currency_field="currency_id")
    reason = fields.Text(
        required=True,
        help="Why the wallet is adjusted; kept on the transaction for the audit "
        "trail.",
    )
    expiry_date = fields.Date(
        compute="_compute_expiry_date",
        store=True,
        readonly=False,
        help="The added credit is removed on this date if unused. Empty: it "
        "never expires.",
    )
    balance = fields.Monetary(
        related="wallet_id.balance",
        string="Current Balance",
        currency_field="currency_id",
    )
    wallet_id = fields.Many2one("referral.wallet", required=True, readonly=True)
    company_id = fields.Many2one(related="wallet_id.company_id")
    accounting_enabled = fields.Boolean(compute="_compute_accounting_enabled")
    account_id = fields.Many2one(
        "account.account",
        string="Counterpart Account",
        compute="_compute_account_id",
        store=True,
        readonly=False,
        check_company=True,
        domain="[('account_type', 'not in', ('asset_receivable', "
        "'liability_payable', 'off_balance'))]",
        help="Account the adjustment is booked against, the credit liability "
        "being the other side (default: the program's reward expense).",
    )
    currency_id = fields.Many2one(related="wallet_id.currency_id")

    @api.depends("direction", "wallet_id")
    def _compute_expiry_date(self):
        today = fields.Date.context_today(self)
        for wizard in self:
            program = self.env["referral.program"]._get_company_program(
                wizard.wallet_id.company_id
            )
            wizard.expiry_date = (
                program._get_credit_expiry_date(today)
                if wizard.direction == "in" and program
                else False
            )

    @api.depends("wallet_id")
    def _compute_accounting_enabled(self):
        for wizard in self:
            wizard.accounting_enabled = bool(
                self.env["referral.program"]._get_books_program(
                    wizard.wallet_id.company_id
                )
            )

    @api.depends("wallet_id")
    def _compute_account_id(self):
        for wizard in self:
            program = self.env["referral.program"]._get_books_program(
                wizard.wallet_id.company_id
            )
            if not wizard.account_id or not program:
                wizard.account_id = program.reward_expense_account_id

    def action_apply(self):
        """Record the adjustment as a posted transaction of the wallet."""
        self.ensure_one()
        if not (
            self.env.user.has_group(APPROVER_GROUP)
            or self.env.user.has_group(ACCOUNTANT_GROUP)
        ):
            raise AccessError(
                self.env._("Only reward approvers can adjust referral wallets.")
            )
        reason = (self.reason or "").strip()
        if not reason:
            raise UserError(
                self.env._("Explain why you adjust the wallet in the reason.")
            )
        if self.currency_id.compare_amounts(self.amount, 0) <= 0:
            raise UserError(
                self.env._(
                    "Enter a positive amount; choose Remove credit to lower the "
                    "balance."
                )
            )
        # sudo: the approver was checked above; transactions are never
        # writable through the access rules.
        # The ledger books the adjustment against the account picked.
        wallet = self.wallet_id.sudo().with_context(
            referral_books_account_id=self.account_id.id
        )
        values = self._prepare_transaction_values(reason)
        if self.direction == "in":
            transaction = wallet._credit(
                self.amount,
                transaction_type="adjustment",
                expiry_date=self.expiry_date,
                **values,
            )
        else:
            transaction = wallet._debit(
                self.amount, transaction_type="adjustment", **values
            )
        self.wallet_id.message_post(
            body=self.env._(
                "Manual adjustment of %(amount)s: %(reason)s",
                amount=self.wallet_id._format_amount(transaction.signed_amount),
                reason=reason,
            )
        )
        return {"type": "ir.actions.act_window_close"}

    def _prepare_transaction_values(self, reason):
        """Values of the adjustment transaction; its description, printed on
        the sponsor's statement, is the first line of the reason."""
        self.ensure_one()
        return {
            "name": self.env._(
                "Adjustment: %(reason)s", reason=reason.splitlines()[0][:100]
            ),
            "reason": reason,
        }
