# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import format_amount

# What a credit line spends: fixed once its order is confirmed and debited.
CREDIT_LINE_AMOUNT_FIELDS = ("price_unit", "product_uom_qty", "discount", "tax_id")


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
        return super().write(vals)

    def _check_referral_credit_amount_unchanged(self, vals):
        """The credit a confirmed order's credit line spent was debited at
        confirmation: its amount no longer changes (removing the line or
        cancelling the order gives the credit back). Taxes count as changed
        whenever written."""
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

    @api.ondelete(at_uninstall=False)
    def _unlink_release_referral_credit(self):
        """A removed credit line gives its credit back."""
        self._release_referral_credit()

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

    def _get_referral_credit_debits(self):
        """Posted debits of these credit lines (as superuser: the ledger is
        not readable line by line through the order's access rights)."""
        if not self.ids:
            return self.env["referral.wallet.transaction"]
        return (
            self.env["referral.wallet.transaction"]
            .sudo()
            .search(
                [
                    ("sale_order_line_id", "in", self.ids),
                    ("transaction_type", "=", "debit"),
                    ("state", "=", "posted"),
                ]
            )
        )

    def _release_referral_credit(self):
        """Give back the credit the debits of these lines spent, except what
        their posted invoices still grant (net of their posted credit notes):
        that part comes back with the invoices' credit notes."""
        credit_lines = self.filtered("referral_credit_wallet_id")
        debits = credit_lines._get_referral_credit_debits()
        for line in credit_lines:
            line_debits = debits.filtered(
                lambda debit, line=line: debit.sale_order_line_id == line
            )
            currency = line.order_id.company_id.currency_id
            held = line._get_referral_credit_invoiced()
            for debit in line_debits.sorted("id", reverse=True):
                # What this debit did not give back yet, beyond what the
                # invoices hold (the newest debits are released first).
                outstanding = currency.round(
                    debit.amount
                    - sum(
                        debit.reversal_ids.filtered(
                            lambda r: r.state == "posted"
                        ).mapped("amount")
                    )
                )
                kept = min(outstanding, max(held, 0.0))
                held = currency.round(held - kept)
                if currency.compare_amounts(outstanding - kept, 0) <= 0:
                    continue
                debit._reverse(
                    amount=currency.round(outstanding - kept),
                    name=self.env._(
                        "Credit released by %(order)s",
                        order=debit.sale_order_id.name,
                    ),
                    sale_order_line_id=debit.sale_order_line_id.id,
                )

    def _get_referral_credit_invoiced(self):
        """Credit of this credit line that its posted customer invoices grant,
        net of its posted credit notes, in company currency."""
        self.ensure_one()
        invoiced = 0.0
        for invoice_line in self.sudo().invoice_lines.filtered(
            lambda aml: aml.move_id.state == "posted"
        ):
            move = invoice_line.move_id
            amount = move._referral_to_company_currency(-invoice_line.price_total)
            if move.move_type == "out_invoice":
                invoiced += amount
            elif move.move_type == "out_refund":
                invoiced -= amount
        return self.order_id.company_id.currency_id.round(invoiced)
