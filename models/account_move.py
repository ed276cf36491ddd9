# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from itertools import product

from odoo import Command, api, fields, models
from odoo.exceptions import UserError
from odoo.tools import float_round


class AccountMove(models.Model):
    _inherit = "account.move"

    referral_credit_amount = fields.Monetary(
        string="Referral Credit Applied",
        compute="_compute_referral_credit_amount",
        currency_field="currency_id",
        help="Wallet credit spent by this invoice, taxes included.",
    )
    referral_credit_available = fields.Monetary(
        compute="_compute_referral_credit_available",
        currency_field="currency_id",
        help="Balance of the customer's referral wallet, in the invoice currency.",
    )

    @api.depends(
        "invoice_line_ids.price_total", "invoice_line_ids.referral_credit_wallet_id"
    )
    def _compute_referral_credit_amount(self):
        for move in self:
            move.referral_credit_amount = -sum(
                move.invoice_line_ids.filtered("referral_credit_wallet_id").mapped(
                    "price_total"
                )
            )

    @api.depends("partner_id", "company_id", "currency_id", "move_type")
    def _compute_referral_credit_available(self):
        invoices = self.filtered(lambda m: m.move_type == "out_invoice")
        (self - invoices).referral_credit_available = 0.0
        wallets = self._get_referral_wallets(invoices)
        for move in invoices:
            wallet = wallets.get(
                (move.partner_id.commercial_partner_id, move.company_id)
            )
            move.referral_credit_available = (
                move._referral_from_company_currency(wallet.spendable_balance)
                if wallet
                else 0.0
            )

    @api.model
    def _get_referral_wallets(self, moves):
        """{(commercial partner, company): wallet} of ``moves``' customers."""
        # sudo: whoever reads the invoice sees the credit it may use.
        wallets = (
            self.env["referral.wallet"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", moves.partner_id.commercial_partner_id.ids),
                    ("company_id", "in", moves.company_id.ids),
                ]
            )
        )
        return {(w.partner_id, w.company_id): w for w in wallets}

    def action_open_referral_credit_wizard(self):
        self.ensure_one()
        self._check_referral_credit_applicable()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Apply Referral Credit"),
            "res_model": "referral.credit.apply.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_move_id": self.id},
        }

    def write(self, vals):
        moved = self._referral_lines_leaving_customer(vals)
        res = super().write(vals)
        if moved:
            moved._drop_referral_lines_of_former_customer()
        if "state" in vals:
            # Posted, reset to draft, cancelled: what the credit lines spend
            # (and their orders' and credit notes') follows the state.
            self.env["referral.ledger"]._sync(move_lines=self.invoice_line_ids)
        return res

    def copy(self, default=None):
        """A duplicate never carries referral credit: it is applied again.
        Credit notes (reversals) keep their invoice's credit lines, so that
        they give the credit back."""
        new_moves = super().copy(default)
        if not (default or {}).get("reversed_entry_id"):
            credit_lines = new_moves.invoice_line_ids.filtered(
                "referral_credit_wallet_id"
            )
            if credit_lines:
                credit_lines.move_id.write(
                    {
                        "invoice_line_ids": [
                            Command.unlink(line.id) for line in credit_lines
                        ]
                    }
                )
        return new_moves

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        posted._revoke_refunded_referral_rewards()
        return posted

    def _referral_lines_leaving_customer(self, vals):
        """Invoices whose credit lines would belong to another customer or
        company after writing ``vals``; refused once posted."""
        if not {"partner_id", "company_id"} & set(vals):
            return self.browse()
        partner = self.env["res.partner"].browse(vals.get("partner_id"))
        company = self.env["res.company"].browse(vals.get("company_id"))
        moved = self.filtered(
            lambda m: m._get_referral_credit_lines()
            and (
                (partner and partner.commercial_partner_id != m.commercial_partner_id)
                or (company and company != m.company_id)
            )
        )
        posted = moved.filtered(lambda m: m.state == "posted")
        if posted:
            raise UserError(
                self.env._(
                    "%(moves)s spend the referral credit of their customer: "
                    "their customer and company can no longer change. Reset "
                    "them to draft first.",
                    moves=", ".join(posted.mapped("name")),
                )
            )
        return moved

    def _drop_referral_lines_of_former_customer(self):
        """The customer or company of draft invoices changed: their credit
        lines spent the former customer's wallet; remove them, say so."""
        for move in self:
            lines = move._get_referral_credit_lines()
            if not lines:
                continue
            names = ", ".join(lines.mapped("name"))
            move.write({"invoice_line_ids": [Command.unlink(ln.id) for ln in lines]})
            move.message_post(
                body=self.env._(
                    "The customer or company changed: the referral credit lines "
                    "of the former customer were removed (%(lines)s).",
                    lines=names,
                )
            )

    def _invoice_paid_hook(self):
        res = super()._invoice_paid_hook()
        orders = self.filtered(
            lambda m: m.move_type == "out_invoice"
        ).line_ids.sale_line_ids.order_id
        if orders:
            # sudo: the reward is earned whoever registers the payment.
            self.env["referral.referral"].sudo().search(
                [
                    ("first_order_id", "in", orders.ids),
                    ("state", "=", "won"),
                    ("program_id.reward_trigger", "=", "invoice_paid"),
                ]
            )._grant_rewards()
        return res

    # ------------------------------------------------------------------
    # Referral credit on invoices
    # ------------------------------------------------------------------

    def _check_referral_credit_applicable(self):
        for move in self:
            if move.move_type != "out_invoice" or move.state != "draft":
                raise UserError(
                    self.env._(
                        "Referral credit is applied on draft customer invoices "
                        "only; %(move)s is not one.",
                        move=move.display_name,
                    )
                )

    def _referral_from_company_currency(self, amount):
        self.ensure_one()
        return self.company_id.currency_id._convert(
            amount,
            self.currency_id,
            self.company_id,
            self.invoice_date or fields.Date.context_today(self),
        )

    def _referral_to_company_currency(self, amount):
        self.ensure_one()
        return self.currency_id._convert(
            amount,
            self.company_id.currency_id,
            self.company_id,
            self.invoice_date or fields.Date.context_today(self),
        )

    def _get_referral_credit_lines(self, from_orders=None):
        """Credit lines of the invoices; ``from_orders`` True: only those
        coming from sales order credit lines, False: only the others."""
        lines = self.invoice_line_ids.filtered("referral_credit_wallet_id")
        if from_orders is None:
            return lines
        return lines.filtered(lambda line: bool(line.sale_line_ids) == from_orders)

    def _get_referral_discountable_lines(self):
        """Product lines the credit is spread over (credit lines applied on
        the invoice before are replaced, so they do not count)."""
        self.ensure_one()
        return self.invoice_line_ids.filtered(
            lambda line: line.display_type == "product"
        ) - self._get_referral_credit_lines(from_orders=False)

    def _apply_referral_credit(self, wallet, amount):
        """Add credit lines lowering the draft invoice's total by ``amount``
        (invoice currency) from ``wallet``; replaces credit lines added on
        the invoice before (those coming from the order stay)."""
        self.ensure_one()
        self._check_referral_credit_applicable()
        program = (
            self.env["referral.program"].sudo()._get_company_program(self.company_id)
        )
        if not program.credit_product_id:
            raise UserError(
                self.env._(
                    "Set a credit product on the referral program of %(company)s "
                    "first.",
                    company=self.company_id.name,
                )
            )
        vals_list = self._prepare_referral_credit_lines_values(program, wallet, amount)
        previous = self._get_referral_credit_lines(from_orders=False)
        self.write(
            {
                "invoice_line_ids": [Command.unlink(line.id) for line in previous]
                + [Command.create(vals) for vals in vals_list]
            }
        )

    def _prepare_referral_credit_lines_values(self, program, wallet, amount):
        """Values of the lines spending ``amount`` (taxes included, invoice
        currency) of ``wallet``, per the program's tax treatment: one line
        without tax (payment), or one line per group of taxes (discount)."""
        self.ensure_one()
        values = {"referral_credit_wallet_id": wallet.id}
        lines = self._get_referral_discountable_lines()
        discountable, per_tax = self._get_referral_discountable_per_tax(lines)
        if program.credit_tax_mode == "payment" or self.currency_id.is_zero(
            discountable
        ):
            return [
                self._prepare_referral_credit_line_values(program, amount, **values)
            ]
        factor = amount / discountable
        vals_list = [
            self._prepare_referral_credit_line_values(
                program, base * factor, taxes=taxes, **values
            )
            for taxes, base in per_tax.items()
            if not self.currency_id.is_zero(base)
        ]
        self._fit_referral_credit_lines_values(vals_list, lines, amount)
        return vals_list

    def _prepare_referral_credit_line_values(
        self, program, amount, taxes=None, **values
    ):
        """One line lowering the invoice by ``amount``: untaxed, or before
        ``taxes`` when given."""
        self.ensure_one()
        name = self.env._("Referral credit")
        if taxes:
            name = self.env._(
                "%(name)s - On products with the following taxes: %(taxes)s",
                name=name,
                taxes=", ".join(taxes.mapped("name")),
            )
        digits = self.env["decimal.precision"].precision_get("Product Price")
        return {
            "product_id": program.credit_product_id.id,
            "quantity": 1.0,
            "price_unit": -float_round(amount, precision_digits=digits),
            "name": name,
            "tax_ids": [Command.set(taxes.ids if taxes else [])],
            **values,
        }

    def _get_referral_discountable_per_tax(self, lines):
        """(discountable, {taxes: amount}) of the invoice ``lines``."""
        self.ensure_one()
        return self.env["account.tax"]._referral_discountable_per_tax(
            [
                self._prepare_product_base_line_for_taxes_computation(line)
                for line in lines
            ],
            self.company_id,
        )

    def _fit_referral_credit_lines_values(self, vals_list, lines, amount):
        """Rounding each line's price may miss ``amount`` by a cent or two:
        move the prices of the two largest lines by the smallest step until
        the credit lines total ``amount`` and the invoice total falls by
        exactly ``amount``; never spend more than ``amount``."""
        self.ensure_one()
        currency = self.currency_id
        AccountTax = self.env["account.tax"]
        digits = self.env["decimal.precision"].precision_get("Product Price")
        step = 10**-digits
        taxes_list = [
            self.env["account.tax"].browse(vals["tax_ids"][0][2]) for vals in vals_list
        ]

        def invoice_total(credit_lines):
            base_lines = [
                self._prepare_product_base_line_for_taxes_computation(line)
                for line in lines
            ] + credit_lines
            AccountTax._add_tax_details_in_base_lines(base_lines, self.company_id)
            AccountTax._round_base_lines_tax_details(base_lines, self.company_id)
            return AccountTax._get_tax_totals_summary(
                base_lines, currency, self.company_id
            )["total_amount_currency"]

        total_before = invoice_total([])

        def evaluate(prices):
            credit_lines = [
                AccountTax._prepare_base_line_for_taxes_computation(
                    None,
                    price_unit=price,
                    quantity=1.0,
                    tax_ids=taxes,
                    currency_id=currency,
                    rate=self.invoice_currency_rate,
                    sign=self.direction_sign,
                )
                for price, taxes in zip(prices, taxes_list, strict=True)
            ]
            fall = total_before - invoice_total(credit_lines)
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
        offsets = (0, -1, 1, -2, 2, -3, 3)
        best = None
        for moves in product(offsets, repeat=len(largest)):
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

    def _revoke_refunded_referral_rewards(self):
        """A referee's first order fully refunded (its posted credit notes
        cover the order's total and leave nothing invoiced): its sponsor
        loses the reward. One partial invoice refunded is not enough."""
        refunds = self.filtered(lambda m: m.move_type == "out_refund")
        orders = refunds.line_ids.sale_line_ids.order_id | (
            refunds.reversed_entry_id.line_ids.sale_line_ids.order_id
        )
        if not orders:
            return
        # sudo: the referral belongs to the sponsor's salesperson.
        referrals = (
            self.env["referral.referral"]
            .sudo()
            .search(
                [
                    ("first_order_id", "in", orders.ids),
                    ("state", "in", ("won", "rewarded")),
                ]
            )
        )
        referrals.filtered(
            lambda r: r.first_order_id._referral_is_fully_refunded()
        )._revoke_rewards(self.env._("the referee's first order was refunded."))
