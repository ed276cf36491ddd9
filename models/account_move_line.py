# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import ValidationError


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
        "that they give the credit back; a duplicated invoice drops the line.",
    )

    @api.constrains("referral_credit_wallet_id", "move_id")
    def _check_referral_credit_wallet(self):
        """A credit line spends the wallet of its customer (commercial
        entity) in the invoice's company, never another one."""
        for line in self.filtered("referral_credit_wallet_id"):
            wallet = line.referral_credit_wallet_id
            move = line.move_id
            if (
                move.move_type not in ("out_invoice", "out_refund")
                or wallet.partner_id != move.commercial_partner_id
                or wallet.company_id != move.company_id
            ):
                raise ValidationError(
                    self.env._(
                        "%(move)s can only spend the referral credit of its "
                        "customer %(customer)s in %(company)s, not the wallet "
                        "of %(wallet)s.",
                        move=move.display_name,
                        customer=move.commercial_partner_id.display_name,
                        company=move.company_id.name,
                        wallet=wallet.sudo().display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        posted = lines.filtered(
            lambda line: line.referral_credit_wallet_id
            and line.move_id.state == "posted"
        )
        if posted:
            self.env["referral.ledger"]._sync(move_lines=posted)
        return lines

    def write(self, vals):
        res = super().write(vals)
        if "referral_credit_wallet_id" in vals:
            self.env["referral.ledger"]._sync(
                move_lines=self.filtered(lambda ln: ln.move_id.state == "posted")
            )
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_release_referral_credit(self):
        credit_lines = self.filtered(
            lambda line: line.referral_credit_wallet_id
            and line.move_id.state == "posted"
        )
        if credit_lines:
            self.env["referral.ledger"]._sync(
                move_lines=credit_lines, removed=credit_lines
            )
