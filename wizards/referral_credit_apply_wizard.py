# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import UserError


class ReferralCreditApplyWizard(models.TransientModel):
    _name = "referral.credit.apply.wizard"
    _description = "Apply Referral Credit on an Invoice"

    move_id = fields.Many2one(
        "account.move",
        string="Invoice",
        required=True,
        readonly=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'draft')]",
    )
    wallet_id = fields.Many2one(
        "referral.wallet", compute="_compute_wallet_id", readonly=True
    )
    currency_id = fields.Many2one(related="move_id.currency_id")
    balance = fields.Monetary(
        string="Available Credit",
        compute="_compute_wallet_id",
        help="Balance of the customer's wallet, in the invoice currency.",
    )
    amount_due = fields.Monetary(
        compute="_compute_amount_due",
        help="Amount due on the invoice before the credit applied on it (the "
        "credit applied replaces it).",
    )
    amount = fields.Monetary(
        compute="_compute_amount",
        store=True,
        readonly=False,
        help="Credit to spend on the invoice, taxes included.",
    )

    @api.depends("move_id")
    def _compute_wallet_id(self):
        for wizard in self:
            move = wizard.move_id
            wallet = move._get_referral_wallets(move).get(
                (move._referral_credit_partner(), move.company_id)
            )
            wizard.wallet_id = wallet
            wizard.balance = (
                move._referral_from_company_currency(wallet.spendable_balance)
                if wallet
                else 0.0
            )

    @api.depends("move_id")
    def _compute_amount_due(self):
        for wizard in self:
            move = wizard.move_id
            wizard.amount_due = move.amount_residual - sum(
                move._get_referral_credit_lines(from_orders=False).mapped("price_total")
            )

    @api.depends("balance", "amount_due")
    def _compute_amount(self):
        for wizard in self:
            wizard.amount = max(min(wizard.balance, wizard.amount_due), 0.0)

    def action_apply(self):
        self.ensure_one()
        move = self.move_id
        move._check_referral_credit_applicable()
        currency = self.currency_id
        if not self.wallet_id or currency.compare_amounts(self.amount, 0) <= 0:
            raise UserError(self.env._("Enter a positive amount of credit to apply."))
        if currency.compare_amounts(self.amount, self.balance) > 0:
            raise UserError(
                self.env._(
                    "The customer has %(balance)s of referral credit: apply at "
                    "most that.",
                    balance=self.wallet_id._format_amount(
                        self.wallet_id.spendable_balance
                    ),
                )
            )
        if currency.compare_amounts(self.amount, self.amount_due) > 0:
            raise UserError(
                self.env._(
                    "The credit cannot exceed the amount due of %(move)s.",
                    move=move.display_name,
                )
            )
        move._apply_referral_credit(self.wallet_id, self.amount)
        return {"type": "ir.actions.act_window_close"}
