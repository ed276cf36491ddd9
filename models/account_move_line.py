# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class AccountMoveLine(models.Model):
    _inherit = "account.move.line"

    referral_credit_wallet_id = fields.Many2one(
        "referral.wallet",
        string="Referral Credit Wallet",
        readonly=True,
        copy=True,
        index="btree_not_null",
        ondelete="restrict",
        help="Wallet this line spends credit from. Kept on credit notes, so "
        "that they give the credit back.",
    )
