# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Credit lines of sales orders and customer invoices, built one way.

One currency conversion, one tax split (the way ``sale_loyalty`` splits a
discount over the taxes of the lines it lowers) and one rounding fit, for
both documents. A document gives its own line values and tax base lines
through the ``_referral_*`` hooks below; what the lines then spend is the
ledger's business (``referral.ledger``)."""

import math
from itertools import product

from odoo import Command, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_round, format_amount

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

    def _referral_credit_partner(self):
        """The commercial entity whose wallet the document spends."""
        self.ensure_one()
        return self.partner_id.commercial_partner_id

    def _referral_goods_lines(self):
        """The document's lines the credit pays for (welcome discount and
        down payments included), without its credit lines."""
        raise NotImplementedError()

    def _referral_check_credit_fittable(self, lines):
        """Raise when the credit ``lines`` can no longer shrink."""
        return True

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
                    ("partner_id", "=", self._referral_credit_partner().id),
                    ("company_id", "=", self.company_id.id),
                ],
                limit=1,
            )
        )

    # ------------------------------------------------------------------
    # How much credit the document takes
    # ------------------------------------------------------------------

    def _referral_credit_goods_amount(self):
        """Most credit the document's goods bear, in its currency, taxes
        included: its total without the credit that applying replaces."""
        raise NotImplementedError()

    def _referral_credit_untaxed_base(self):
        """Untaxed amount of the document's goods (its lines other than
        credit lines), in its currency: the base of a percentage limit."""
        raise NotImplementedError()

    def _referral_credit_kept_amount(self):
        """Credit already on the document that applying keeps (an invoice's
        credit coming from its orders), in its currency."""
        return 0.0

    def _referral_check_credit_apply_access(self):
        """Raise ``AccessError`` when the user may not apply credit here."""
        self.check_access("write")

    def _referral_apply_credit_amount(self, wallet, amount):
        """Replace the credit applied on the document by lines spending
        ``amount`` (document currency, taxes included) of ``wallet``."""
        raise NotImplementedError()

    def _referral_credit_bounds(self, wallet):
        """What the credit applied on this document may never exceed, in its
        currency: ``{"balance", "goods"}``, the wallet's spendable balance
        and the goods."""
        self.ensure_one()
        currency = self.currency_id
        balance = (
            self._referral_from_company_currency(wallet.spendable_balance)
            if wallet
            else 0.0
        )
        return {
            "balance": currency.round(max(balance, 0.0)),
            "goods": currency.round(max(self._referral_credit_goods_amount(), 0.0)),
        }

    def _referral_credit_limits(self, wallet, program):
        """What bounds the credit this document takes, in its currency: the
        bounds (balance, goods), ``"program"`` (the program's credit per
        renewal, less the credit the document keeps) and ``"sponsor"`` (the
        sponsor's own limit per renewal, less the same); None for no
        limit."""
        self.ensure_one()
        currency = self.currency_id
        kept = self._referral_credit_kept_amount()
        caps = {
            "program": program._get_renewal_credit_cap(self) if program else None,
            "sponsor": self._referral_from_company_currency(wallet.renewal_max_amount)
            if wallet and wallet.renewal_max_amount
            else None,
        }
        return dict(
            self._referral_credit_bounds(wallet),
            **{
                name: None if cap is None else currency.round(max(cap - kept, 0.0))
                for name, cap in caps.items()
            },
        )

    def _referral_credit_allowed_amount(self, wallet, program):
        """Credit the document takes unless a user chooses otherwise: the
        smallest of the program's limit, the sponsor's, the spendable balance
        and the goods (document currency)."""
        limits = self._referral_credit_limits(wallet, program)
        return min(amount for amount in limits.values() if amount is not None)

    def _referral_check_credit_amount(self, wallet, amount):
        """Raise when ``amount`` (document currency) of ``wallet`` cannot be
        applied on this document: not a positive number, more than the
        spendable balance or more than the goods."""
        self.ensure_one()
        currency = self.currency_id
        if (
            not wallet
            or not math.isfinite(amount)
            or currency.compare_amounts(amount, 0) <= 0
        ):
            raise UserError(self.env._("Enter a positive amount of credit to apply."))
        limits = self._referral_credit_bounds(wallet)
        if currency.compare_amounts(amount, limits["balance"]) > 0:
            raise UserError(
                self.env._(
                    "The customer has %(balance)s of referral credit: apply at "
                    "most that.",
                    balance=format_amount(self.env, limits["balance"], currency),
                )
            )
        if currency.compare_amounts(amount, limits["goods"]) > 0:
            raise UserError(
                self.env._(
                    "The credit cannot exceed the amount due of %(move)s.",
                    move=self.display_name,
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
    # Bounded by the goods
    # ------------------------------------------------------------------

    def _referral_fit_credit_lines(self):
        """When the document's total fell below zero (a quantity, price,
        discount or line changed after the credit was applied), shrink its
        credit lines so that the total is zero, or remove them, and say so
        on the document; returns the credit taken off, in the document's
        currency. What the lines spent is the ledger's business: it gives
        the surplus back at its next sync."""
        self.ensure_one()
        currency = self.currency_id
        lines = self[self._referral_lines_field()].filtered("referral_credit_wallet_id")
        if not self._referral_credit_exceeds_goods(lines):
            return 0.0
        credit = -sum(lines.mapped("price_total"))
        keep = currency.round(max(credit + self.amount_total, 0.0))
        self._referral_check_credit_fittable(lines)
        fitting = {"referral_ledger_fitting": True, "referral_skip_auto_apply": True}
        if currency.is_zero(keep):
            # A confirmed order's line an invoice refers to stays, at zero.
            removable = lines.filtered(
                lambda ln: "invoice_lines" not in ln._fields or not ln.invoice_lines
            )
            self.with_context(**fitting).write(
                {
                    self._referral_lines_field(): [
                        Command.unlink(line.id) for line in removable
                    ]
                    + [
                        Command.update(line.id, {"price_unit": 0.0})
                        for line in lines - removable
                    ]
                }
            )
        else:
            self._referral_scale_credit_lines(lines, credit, keep, fitting)
        self.message_post(
            body=self.env._(
                "The referral credit was lowered from %(before)s to %(after)s: "
                "the credit applied may not exceed what the other lines are "
                "worth. What was spent beyond that goes back to the wallet.",
                before=format_amount(self.env, credit, currency),
                after=format_amount(self.env, keep, currency),
            )
        )
        return currency.round(credit - keep)

    def _referral_credit_exceeds_goods(self, lines):
        """Whether the credit ``lines`` make the document's total fall below
        zero (read from the lines first: the total is only computed when
        they come close)."""
        self.ensure_one()
        if not lines:
            return False
        currency = self.currency_id
        credit = -sum(lines.mapped("price_total"))
        goods = sum(self._referral_goods_lines().mapped("price_total"))
        if currency.compare_amounts(credit, goods - currency.rounding) < 0:
            return False
        return currency.compare_amounts(self.amount_total, 0) < 0

    def _referral_scale_credit_lines(self, lines, credit, keep, context):
        """Bring the credit ``lines`` (``credit`` in all) down to ``keep``:
        split again over the taxes of the goods as they are now (a tax whose
        goods are gone keeps no credit), or, for credit as a payment, in
        proportion; rounded so that they total ``keep`` exactly."""
        taxes_field = "tax_id" if "tax_id" in lines._fields else "tax_ids"
        quantity_field = "product_uom_qty" if taxes_field == "tax_id" else "quantity"
        goods = self._referral_goods_lines()
        taxes_list = [line[taxes_field] for line in lines]
        prices = [
            self._referral_price(line.price_total * keep / credit) for line in lines
        ]
        if any(taxes_list):
            discountable, per_tax = self._referral_discountable_per_tax(goods)
            groups = {taxes for taxes, base in per_tax.items() if base}
            if discountable and groups <= set(taxes_list):
                factor = keep / discountable
                prices = [
                    -self._referral_price(
                        per_tax.get(taxes, 0.0) * factor / taxes_list.count(taxes)
                    )
                    for taxes in taxes_list
                ]
        vals_list = [{"price_unit": price} for price in prices]
        self._fit_referral_credit_prices(vals_list, taxes_list, goods, keep)
        self.with_context(**context).write(
            {
                self._referral_lines_field(): [
                    Command.update(
                        line.id,
                        {
                            "price_unit": vals["price_unit"],
                            quantity_field: 1.0,
                            "discount": 0.0,
                        }
                        if line[quantity_field] != 1.0 or line.discount
                        else {"price_unit": vals["price_unit"]},
                    )
                    for line, vals in zip(lines, vals_list, strict=True)
                ]
            }
        )

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
