# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Which credits each spending consumed, so that giving credit back restores
those very credits (and their expiry dates) instead of a new credit.

A row moves ``amount`` of one inflow (``credit_id``: a reward, an
adjustment...) out of the wallet's spendable credit (positive: consumed) or
back into it (negative: restored), on behalf of a *holder*: the sales order
line, the invoice (for one wallet, its credit notes included) or the manual
transaction that spends it. What a holder still holds of each credit is the
sum of its rows; the ledger writes them, nobody else."""

from odoo import fields, models


class ReferralWalletAllocation(models.Model):
    _name = "referral.wallet.allocation"
    _description = "Referral Credit Consumed"
    _order = "id"

    amount = fields.Monetary(
        required=True,
        readonly=True,
        currency_field="currency_id",
        help="Positive: credit consumed; negative: credit given back.",
    )
    wallet_id = fields.Many2one(
        "referral.wallet", required=True, readonly=True, index=True, ondelete="cascade"
    )
    currency_id = fields.Many2one(related="wallet_id.currency_id")
    credit_id = fields.Many2one(
        "referral.wallet.transaction",
        string="Credit",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
        help="The credit consumed or given back.",
    )
    transaction_id = fields.Many2one(
        "referral.wallet.transaction",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
        help="The spending or reversal that moved it.",
    )
    sale_order_line_id = fields.Many2one(
        "sale.order.line", readonly=True, index="btree_not_null", ondelete="set null"
    )
    move_id = fields.Many2one(
        "account.move",
        string="Invoice",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
    )
    holder_transaction_id = fields.Many2one(
        "referral.wallet.transaction",
        readonly=True,
        index="btree_not_null",
        ondelete="cascade",
        help="A spending outside any document (a manual adjustment).",
    )
