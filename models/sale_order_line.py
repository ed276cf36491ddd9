# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import format_amount

# What a credit line spends: fixed once its order is confirmed and debited.
CREDIT_LINE_AMOUNT_FIELDS = ("price_unit", "product_uom_qty", "discount", "tax_id")
# What the goods the credit pays for are worth.
GOODS_AMOUNT_FIELDS = {
    "price_unit",
    "product_uom_qty",
    "discount",
    "tax_id",
    "product_id",
    "product_uom",
}


class SaleOrderLine(models.Model):
    _inherit = "sale.order.line"

    referral_credit_wallet_id = fields.Many2one(
        "referral.wallet",
        string="Referral Credit Wallet",
        readonly=True,
        copy=False,
        index="btree_not_null",
        ondelete="restrict",
        help="Wallet this line spends credit from; debited when the order is "
        "confirmed.",
    )
    is_referral_welcome_discount = fields.Boolean(
        string="Referral Welcome Discount", readonly=True, copy=False
    )

    def write(self, vals):
        if any(fname in vals for fname in CREDIT_LINE_AMOUNT_FIELDS):
            self._check_referral_credit_amount_unchanged(vals)
        previous = (
            self.filtered("referral_credit_wallet_id")
            if "referral_credit_wallet_id" in vals
            else self.browse()
        )
        res = super().write(vals)
        if "referral_credit_wallet_id" in vals:
            self.env["referral.ledger"]._sync(
                order_lines=(self | previous).filtered(lambda ln: ln.state == "sale")
            )
        elif GOODS_AMOUNT_FIELDS & set(vals):
            self.order_id._referral_fit_after_line_change()
        return res

    def _check_referral_credit_amount_unchanged(self, vals):
        """The credit a confirmed order's credit line spent was debited at
        confirmation: its amount no longer changes (removing the line or
        cancelling the order gives the credit back). Taxes count as changed
        whenever written."""
        if self.env.context.get("referral_ledger_fitting"):
            # The ledger fits the credit to the goods.
            return
        for line in self.filtered(
            lambda line: line.referral_credit_wallet_id and line.state == "sale"
        ):
            if "tax_id" in vals or any(
                line._fields[fname].convert_to_cache(vals[fname], line) != line[fname]
                for fname in CREDIT_LINE_AMOUNT_FIELDS
                if fname in vals and fname != "tax_id"
            ):
                raise UserError(
                    self.env._(
                        "%(order)s spent %(amount)s of referral credit on "
                        "this line when it was confirmed: its price, quantity, "
                        "discount and taxes can no longer change. Remove the "
                        "line to give the credit back, or cancel the order.",
                        order=line.order_id.name,
                        amount=format_amount(
                            self.env, -line.price_total, line.currency_id
                        ),
                    )
                )

    @api.constrains("referral_credit_wallet_id", "order_id")
    def _check_referral_credit_wallet(self):
        self.env["referral.ledger"]._check_line_wallets(self)

    @api.model_create_multi
    def create(self, vals_list):
        lines = super().create(vals_list)
        confirmed = lines.filtered(
            lambda line: line.referral_credit_wallet_id and line.state == "sale"
        )
        if confirmed:
            self.env["referral.ledger"]._sync(order_lines=confirmed)
        else:
            lines.order_id._referral_fit_after_line_change()
        return lines

    def unlink(self):
        orders = self.order_id
        res = super().unlink()
        orders.exists()._referral_fit_after_line_change()
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_release_referral_credit(self):
        """A removed credit line gives its credit back."""
        credit_lines = self.filtered("referral_credit_wallet_id")
        if credit_lines:
            self.env["referral.ledger"]._sync(
                order_lines=credit_lines, removed=credit_lines
            )

    def _check_line_unlink(self):
        """A credit line not invoiced yet may be removed from a confirmed
        order: its debit is reversed, the customer gets its credit back."""
        return (
            super()
            ._check_line_unlink()
            .filtered(
                lambda line: not line.referral_credit_wallet_id or line.invoice_lines
            )
        )

    def _prepare_invoice_line(self, **optional_values):
        values = super()._prepare_invoice_line(**optional_values)
        if self.referral_credit_wallet_id:
            values["referral_credit_wallet_id"] = self.referral_credit_wallet_id.id
        return values

    def _can_be_invoiced_alone(self):
        return super()._can_be_invoiced_alone() and not self._is_referral_line()

    def _is_not_sellable_line(self):
        return self._is_referral_line() or super()._is_not_sellable_line()

    def _is_referral_line(self):
        """Lines added by the referral flows (credit or welcome discount)."""
        self.ensure_one()
        return bool(self.referral_credit_wallet_id or self.is_referral_welcome_discount)
