# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Apply Referral Credit, one wizard for quotations and draft invoices: the
amount proposed is what the program and the sponsor allow, the amount
applied never more than the spendable balance and the document's goods.
Only orchestrates: the limits and the lines are the documents' business
(``referral.credit.mixin``)."""

from odoo import api, fields, models
from odoo.exceptions import UserError


class ReferralCreditApplyWizard(models.TransientModel):
    _name = "referral.credit.apply.wizard"
    _description = "Apply Referral Credit"

    order_id = fields.Many2one(
        "sale.order",
        string="Quotation",
        readonly=True,
        domain="[('state', 'in', ('draft', 'sent'))]",
    )
    move_id = fields.Many2one(
        "account.move",
        string="Invoice",
        readonly=True,
        domain="[('move_type', '=', 'out_invoice'), ('state', '=', 'draft')]",
    )
    wallet_id = fields.Many2one(
        "referral.wallet", compute="_compute_wallet_id", readonly=True
    )
    currency_id = fields.Many2one(
        "res.currency", compute="_compute_wallet_id", readonly=True
    )
    balance = fields.Monetary(
        string="Available Credit",
        compute="_compute_wallet_id",
        help="Spendable balance of the customer's wallet, in the document's "
        "currency.",
    )
    amount_due = fields.Monetary(
        compute="_compute_wallet_id",
        help="Total of the document before the credit applied on it (the "
        "credit applied replaces it): the most credit it takes.",
    )
    allowed_amount = fields.Monetary(
        string="Proposed",
        compute="_compute_wallet_id",
        help="What the program's credit per renewal and the sponsor's own "
        "limit allow, within the balance and the total.",
    )
    renewal_auto_apply = fields.Boolean(
        related="wallet_id.renewal_auto_apply",
        string="Sponsor: Apply Automatically",
    )
    renewal_max_amount = fields.Monetary(
        related="wallet_id.renewal_max_amount",
        string="Sponsor: Most per Renewal",
        currency_field="company_currency_id",
    )
    company_currency_id = fields.Many2one(
        related="wallet_id.currency_id", string="Wallet Currency"
    )
    amount = fields.Monetary(
        compute="_compute_amount",
        store=True,
        readonly=False,
        help="Credit to spend on the document, taxes included.",
    )

    def _get_document(self):
        """The quotation or draft invoice the wizard applies credit on."""
        self.ensure_one()
        if bool(self.order_id) == bool(self.move_id):
            raise UserError(
                self.env._("Open this wizard from one quotation or one invoice.")
            )
        return self.order_id or self.move_id

    @api.depends("order_id", "move_id")
    def _compute_wallet_id(self):
        for wizard in self:
            document = wizard.order_id or wizard.move_id
            if not document or (wizard.order_id and wizard.move_id):
                wizard.update(
                    {
                        "wallet_id": False,
                        "currency_id": False,
                        "balance": 0.0,
                        "amount_due": 0.0,
                        "allowed_amount": 0.0,
                    }
                )
                continue
            wallet = document._get_referral_credit_wallet()
            program = (
                self.env["referral.program"]
                .sudo()
                ._get_company_program(document.company_id)
            )
            limits = document._referral_credit_limits(wallet, program)
            wizard.update(
                {
                    "wallet_id": wallet,
                    "currency_id": document.currency_id,
                    "balance": limits["balance"],
                    "amount_due": limits["goods"],
                    "allowed_amount": document._referral_credit_allowed_amount(
                        wallet, program
                    ),
                }
            )

    @api.depends("allowed_amount")
    def _compute_amount(self):
        for wizard in self:
            wizard.amount = max(wizard.allowed_amount, 0.0)

    def action_apply(self):
        self.ensure_one()
        document = self._get_document()
        document._referral_check_credit_apply_access()
        # The wallet read again from the document, never from the request.
        wallet = document._get_referral_credit_wallet()
        document._referral_check_credit_amount(wallet, self.amount)
        document._referral_apply_credit_amount(wallet, self.amount)
        return {"type": "ir.actions.act_window_close"}
