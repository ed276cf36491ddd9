# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Credit lines of sales orders and customer invoices, built one way.

One currency conversion, one tax split (the way ``sale_loyalty`` splits a
discount over the taxes of the lines it lowers) and one rounding fit, for
both documents. A document gives its own line values and tax base lines
through the ``_referral_*`` hooks below; what the lines then spend is the
ledger's business (``referral.ledger``)."""

from itertools import product

from odoo import Command, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_round

# Steps of the smallest price unit tried on the two largest credit lines.
FIT_OFFSETS = (0, -1, 1, -2, 2, -3, 3)


class ReferralCreditMixin(models.AbstractModel):
    _name = "referral.credit.mixin"
    _description = "Referral Credit Lines"

    # ------------------------------------------------------------------
    # What each document gives
    # ------------------------------------------------------------------

    def _referral_credit_date(self):
        """Date of the document's currency rate."""
        raise NotImplementedError()

    def _referral_lines_field(self):
        """Name of the document's lines field."""
        raise NotImplementedError()

    def _referral_base_lines(self, lines):
        """Tax computation base lines of the document's ``lines``."""
        raise NotImplementedError()

    def _referral_base_line_values(self):
        """Rate and sign of the document's base lines."""
        raise NotImplementedError()

    def _prepare_referral_line_values(self, program, price, taxes=None, **values):
        """Values of one document line of the credit product at ``price``."""
        raise NotImplementedError()

    # ------------------------------------------------------------------
    # Currency
    # ------------------------------------------------------------------

    def _referral_from_company_currency(self, amount):
        self.ensure_one()
        return self.company_id.currency_id._convert(
            amount,
            self.currency_id or self.company_id.currency_id,
            self.company_id,
            self._referral_credit_date() or fields.Date.context_today(self),
        )

    def _referral_to_company_currency(self, amount):
        self.ensure_one()
        return (self.currency_id or self.company_id.currency_id)._convert(
            amount,
            self.company_id.currency_id,
            self.company_id,
            self._referral_credit_date() or fields.Date.context_today(self),
        )

    # ------------------------------------------------------------------
    # Wallet
    # ------------------------------------------------------------------

    def _get_referral_credit_wallet(self):
        """The wallet of the document's customer (commercial entity) in its
        company; may be empty."""
        self.ensure_one()
        # sudo: whoever reads the document sees the credit it may use; the
        # search is limited to this customer and company.
        return (
            self.env["referral.wallet"]
            .sudo()
            .search(
                [
                    ("partner_id", "=", self.partner_id.commercial_partner_id.id),
                    ("company_id", "=", self.company_id.id),
                ],
                limit=1,
            )
        )

    # ------------------------------------------------------------------
    # Tax split and line values
    # ------------------------------------------------------------------

    def _referral_discountable_per_tax(self, lines):
        """(discountable, {taxes: amount}) of the document's ``lines``."""
        self.ensure_one()
        return self.env["account.tax"]._referral_discountable_per_tax(
            self._referral_base_lines(lines), self.company_id
        )

    def _referral_line_name(self, name, taxes):
        if not taxes:
            return name
        return self.env._(
            "%(name)s - On products with the following taxes: %(taxes)s",
            name=name,
            taxes=", ".join(taxes.mapped("name")),
        )

    def _referral_price(self, amount):
        digits = self.env["decimal.precision"].precision_get("Product Price")
        return float_round(amount, precision_digits=digits)

    def _prepare_referral_credit_lines_values(self, program, wallet, amount, lines):
        """Values of the lines spending ``amount`` (taxes included, document
        currency) of ``wallet`` on ``lines``, per the program's tax
        treatment: one line without tax (payment), or one line per group of
        taxes (discount), fitted so that the total falls by ``amount``."""
        self.ensure_one()
        values = {
            "referral_credit_wallet_id": wallet.id,
            "name": self.env._("Referral credit"),
        }
        discountable, per_tax = self._referral_discountable_per_tax(lines)
        if program.credit_tax_mode == "payment" or self.currency_id.is_zero(
            discountable
        ):
            return [
                self._prepare_referral_line_values(
                    program, -self._referral_price(amount), **values
                )
            ]
        factor = amount / discountable
        bases = [
            (taxes, base)
            for taxes, base in per_tax.items()
            if not self.currency_id.is_zero(base)
        ]
        vals_list = [
            self._prepare_referral_line_values(
                program, -self._referral_price(base * factor), taxes, **values
            )
            for taxes, base in bases
        ]
        self._fit_referral_credit_prices(
            vals_list, [taxes for taxes, _base in bases], lines, amount
        )
        return vals_list

    def _prepare_referral_discount_lines_values(self, program, lines, factor, **values):
        """Lines lowering ``lines`` by ``factor`` of their discountable
        amount, one per group of taxes (the welcome discount)."""
        self.ensure_one()
        _discountable, per_tax = self._referral_discountable_per_tax(lines)
        return [
            self._prepare_referral_line_values(
                program, -self._referral_price(base * factor), taxes, **values
            )
            for taxes, base in per_tax.items()
            if not self.currency_id.is_zero(base)
        ]

    # ------------------------------------------------------------------
    # Rounding fit
    # ------------------------------------------------------------------

    def _fit_referral_credit_prices(self, vals_list, taxes_list, lines, amount):
        """Rounding each line's price may miss ``amount`` by a cent or two:
        move the prices of the two largest lines by the smallest step until
        the credit lines total ``amount`` and the document's total falls by
        exactly ``amount``; never spend more than ``amount``."""
        self.ensure_one()
        currency = self.currency_id
        AccountTax = self.env["account.tax"]
        digits = self.env["decimal.precision"].precision_get("Product Price")
        step = 10**-digits
        base_line_values = self._referral_base_line_values()

        def total(credit_lines):
            base_lines = self._referral_base_lines(lines) + credit_lines
            AccountTax._add_tax_details_in_base_lines(base_lines, self.company_id)
            AccountTax._round_base_lines_tax_details(base_lines, self.company_id)
            return AccountTax._get_tax_totals_summary(
                base_lines, currency, self.company_id
            )["total_amount_currency"]

        total_before = total([])

        def evaluate(prices):
            credit_lines = [
                AccountTax._prepare_base_line_for_taxes_computation(
                    None,
                    price_unit=price,
                    quantity=1.0,
                    tax_ids=taxes,
                    currency_id=currency,
                    **base_line_values,
                )
                for price, taxes in zip(prices, taxes_list, strict=True)
            ]
            fall = total_before - total(credit_lines)
            spent = -sum(
                currency.round(line["tax_details"]["raw_total_included_currency"])
                for line in credit_lines
            )
            return (
                currency.compare_amounts(spent, amount) > 0,
                abs(currency.round(fall - amount)),
                abs(currency.round(spent - amount)),
            )

        prices = [vals["price_unit"] for vals in vals_list]
        largest = sorted(range(len(prices)), key=lambda i: prices[i])[:2]
        best = None
        for moves in product(FIT_OFFSETS, repeat=len(largest)):
            candidate = list(prices)
            for index, offset in zip(largest, moves, strict=True):
                candidate[index] = float_round(
                    candidate[index] + offset * step, precision_digits=digits
                )
            score = evaluate(candidate)
            if best is None or score < best[0]:
                best = (score, candidate)
            if score == (False, 0.0, 0.0):
                break
        for vals, price in zip(vals_list, best[1], strict=True):
            vals["price_unit"] = price

    # ------------------------------------------------------------------
    # Customer change
    # ------------------------------------------------------------------

    def _referral_credit_document_lines(self):
        """The document's referral lines (credit, welcome discount)."""
        self.ensure_one()
        return self[self._referral_lines_field()].filtered(
            lambda line: line.referral_credit_wallet_id
            or line._fields.get("is_referral_welcome_discount")
            and line.is_referral_welcome_discount
        )

    def _referral_lines_leaving_customer(self, vals, locked_states):
        """Documents whose referral lines would belong to another customer
        or company after writing ``vals``; refused in ``locked_states``."""
        if not {"partner_id", "company_id"} & set(vals):
            return self.browse()
        partner = self.env["res.partner"].browse(vals.get("partner_id"))
        company = self.env["res.company"].browse(vals.get("company_id"))
        moved = self.filtered(
            lambda doc: doc._referral_credit_document_lines()
            and (
                (
                    partner
                    and partner.commercial_partner_id
                    != doc.partner_id.commercial_partner_id
                )
                or (company and company != doc.company_id)
            )
        )
        locked = moved.filtered(lambda doc: doc.state in locked_states)
        if locked:
            raise UserError(
                self.env._(
                    "The customer and company of %(documents)s can no longer "
                    "change: the referral credit of their customer is spent on "
                    "them. Cancel or reset them first, or create a new one.",
                    documents=", ".join(locked.mapped("display_name")),
                )
            )
        return moved

    def _drop_referral_lines_of_former_customer(self):
        """The customer or company changed: the credit lines spent the former
        customer's wallet, the welcome discount was its own; remove them and
        say so on the document."""
        for document in self:
            lines = document._referral_credit_document_lines()
            if not lines:
                continue
            names = ", ".join(lines.mapped("name"))
            document.with_context(referral_skip_auto_apply=True).write(
                {
                    document._referral_lines_field(): [
                        Command.unlink(line.id) for line in lines
                    ]
                }
            )
            document.message_post(
                body=self.env._(
                    "The customer or company changed: the referral credit and "
                    "welcome discount lines of the former customer were removed "
                    "(%(lines)s).",
                    lines=names,
                )
            )
