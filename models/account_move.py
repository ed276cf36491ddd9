# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import defaultdict
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
                move._referral_from_company_currency(wallet.balance) if wallet else 0.0
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

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        posted._debit_referral_credit()
        posted._restore_refunded_referral_credit()
        posted._revoke_refunded_referral_rewards()
        return posted

    def button_draft(self):
        res = super().button_draft()
        self._release_referral_credit()
        return res

    def button_cancel(self):
        res = super().button_cancel()
        self._release_referral_credit()
        return res

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

    def _get_referral_credit_lines_to_debit(self):
        """Credit lines whose credit the invoices spend: all but those coming
        from an order credit line already debited at its confirmation."""
        lines = self._get_referral_credit_lines()
        debited = lines.sale_line_ids._get_referral_credit_debits().sale_order_line_id
        return lines.filtered(lambda line: not line.sale_line_ids & debited)

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

    def _debit_referral_credit(self):
        """Spend the credit of posted invoices' credit lines, but for those
        coming from an order credit line debited at its confirmation."""
        for move in self.filtered(lambda m: m.move_type == "out_invoice"):
            amounts = defaultdict(float)
            for line in move._get_referral_credit_lines_to_debit():
                amounts[line.referral_credit_wallet_id] -= line.price_total
            for wallet, amount in amounts.items():
                # sudo: posting the invoice spends the customer's credit; the
                # ledger is written by the flows, never through access rights.
                wallet.sudo()._debit(
                    move.company_id.currency_id.round(
                        move._referral_to_company_currency(amount)
                    ),
                    invoice_id=move.id,
                    name=self.env._("Credit spent on %(move)s", move=move.name),
                )

    def _get_referral_debits(self):
        return (
            self.env["referral.wallet.transaction"]
            .sudo()
            .search(
                [
                    ("invoice_id", "in", self.ids),
                    ("transaction_type", "=", "debit"),
                    ("state", "=", "posted"),
                ]
            )
        )

    def _release_referral_credit(self):
        """Reset to draft or cancelled: invoices give back what they spent
        (credit spent by their orders stays spent with the orders), credit
        notes take back what they restored."""
        refunds = self.filtered(lambda m: m.move_type == "out_refund")
        for debit in (self - refunds)._get_referral_debits():
            debit._reverse(
                invoice_id=debit.invoice_id.id,
                name=self.env._(
                    "Credit released by %(move)s", move=debit.invoice_id.name
                ),
            )
        for refund in refunds.filtered("invoice_line_ids.referral_credit_wallet_id"):
            for wallet, restored in refund._get_referral_restored_amounts().items():
                if wallet.currency_id.compare_amounts(restored, 0) > 0:
                    refund._take_back_referral_credit(wallet, restored)

    def _get_referral_restored_amounts(self):
        """{wallet: credit this credit note gave back so far, net}."""
        self.ensure_one()
        # sudo: the ledger is read whoever resets or posts the credit note.
        groups = (
            self.env["referral.wallet.transaction"]
            .sudo()
            ._read_group(
                [("invoice_id", "=", self.id), ("state", "=", "posted")],
                ["wallet_id"],
                ["signed_amount:sum"],
            )
        )
        return dict(groups)

    def _take_back_referral_credit(self, wallet, amount):
        """Credit note reset to draft: the credit it restored is spent again
        (refused when the customer has spent it since)."""
        self.ensure_one()
        if wallet.currency_id.compare_amounts(amount, wallet.sudo().balance) > 0:
            raise UserError(
                self.env._(
                    "%(refund)s gave back %(amount)s of referral credit, which "
                    "%(customer)s has spent since: it cannot be reset to draft "
                    "or cancelled. Issue an invoice instead.",
                    refund=self.name,
                    amount=wallet._format_amount(amount),
                    customer=wallet.partner_id.display_name,
                )
            )
        # sudo: resetting the credit note takes back the credit it restored;
        # the ledger is written by the flows, never through access rights.
        wallet.sudo()._debit(
            amount,
            invoice_id=self.id,
            name=self.env._("Credit taken back by %(refund)s", refund=self.name),
        )

    def _restore_refunded_referral_credit(self):
        """A posted credit note gives back the credit its invoice (or the
        invoice's order) consumed, for the credit lines it refunds; posted
        again after a reset, what it took back is given back, then adjusted
        to its credit lines."""
        for refund in self.filtered(
            lambda m: m.move_type == "out_refund" and m.reversed_entry_id
        ):
            lines = refund._get_referral_credit_lines()
            if not lines:
                # Nothing restored while posted before either (credit lines
                # cannot change on a posted credit note).
                continue
            for debit in refund._get_referral_debits():
                debit._reverse(
                    invoice_id=refund.id,
                    name=self.env._(
                        "Credit restored by %(refund)s", refund=refund.name
                    ),
                )
            to_restore = defaultdict(float)
            for line in lines:
                to_restore[line.referral_credit_wallet_id] -= line.price_total
            restored = refund._get_referral_restored_amounts()
            for wallet in set(to_restore) | set(restored):
                currency = wallet.currency_id
                missing = currency.round(
                    refund._referral_to_company_currency(to_restore[wallet])
                    - restored.get(wallet, 0.0)
                )
                if currency.compare_amounts(missing, 0) < 0:
                    refund._take_back_referral_credit(wallet, -missing)
                elif currency.compare_amounts(missing, 0) > 0:
                    refund._restore_referral_credit_from_origin(
                        lines.filtered(
                            lambda line, w=wallet: line.referral_credit_wallet_id == w
                        ),
                        missing,
                    )

    def _restore_referral_credit_from_origin(self, lines, amount):
        """Give back up to ``amount`` of what the debits of the credit note's
        origin spent for ``lines``: the invoice's own debits, or those of
        the order lines they come from; never more than they spent."""
        self.ensure_one()
        wallet = lines.referral_credit_wallet_id
        origin_debits = (
            self.reversed_entry_id._get_referral_debits()
            | lines.sale_line_ids._get_referral_credit_debits()
        ).filtered(lambda debit: debit.wallet_id == wallet)
        currency = wallet.currency_id
        for debit in origin_debits:
            if currency.compare_amounts(amount, 0) <= 0:
                break
            reversals = debit._reverse(
                amount=amount,
                invoice_id=self.id,
                name=self.env._("Credit restored by %(refund)s", refund=self.name),
            )
            amount = currency.round(amount - sum(reversals.mapped("amount")))

    def _revoke_refunded_referral_rewards(self):
        """A referee's first order fully refunded: its sponsor loses the
        reward."""
        refunds = self.filtered(
            lambda m: m.move_type == "out_refund" and m.reversed_entry_id
        )
        # All the posted credit notes of the invoice count, not only these.
        fully_refunded = refunds.reversed_entry_id.filtered(
            lambda inv: inv.payment_state == "reversed"
            or inv.currency_id.compare_amounts(
                sum(
                    inv.reversal_move_ids.filtered(
                        lambda r: r.move_type == "out_refund" and r.state == "posted"
                    ).mapped("amount_total")
                ),
                inv.amount_total,
            )
            >= 0
        )
        orders = fully_refunded.line_ids.sale_line_ids.order_id
        if not orders:
            return
        # sudo: the referral belongs to the sponsor's salesperson.
        self.env["referral.referral"].sudo().search(
            [("first_order_id", "in", orders.ids), ("state", "in", ("won", "rewarded"))]
        )._revoke_rewards(self.env._("the referee's first invoice was refunded."))
