# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


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
        if self.env.context.get("referral_ledger_fitting"):
            # Built from the wallet of the invoice's customer by the credit
            # flows themselves.
            return
        self.env["referral.ledger"]._check_line_wallets(self)

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
