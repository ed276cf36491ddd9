# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import defaultdict

from odoo import Command, api, fields, models
from odoo.exceptions import UserError


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
        previous = self._get_referral_credit_lines(from_orders=False)
        lines = (
            self.invoice_line_ids.filtered(lambda line: line.display_type == "product")
            - previous
        )
        total = sum(lines.mapped("price_total"))
        values = {"referral_credit_wallet_id": wallet.id}
        if program.credit_tax_mode == "payment" or not total:
            vals_list = [self._prepare_referral_line_values(program, amount, **values)]
        else:
            vals_list = [
                self._prepare_referral_line_values(
                    program, base * amount / total, taxes=taxes, **values
                )
                for taxes, base in self._referral_discountable_per_tax(lines).items()
                if not self.currency_id.is_zero(base)
            ]
        self.write(
            {
                "invoice_line_ids": [Command.unlink(line.id) for line in previous]
                + [Command.create(vals) for vals in vals_list]
            }
        )

    def _prepare_referral_line_values(self, program, amount, taxes=None, **values):
        self.ensure_one()
        name = self.env._("Referral credit")
        if taxes:
            name = self.env._(
                "%(name)s - On products with the following taxes: %(taxes)s",
                name=name,
                taxes=", ".join(taxes.mapped("name")),
            )
        return {
            "product_id": program.credit_product_id.id,
            "quantity": 1.0,
            "price_unit": -amount,
            "name": name,
            "tax_ids": [Command.set(taxes.ids if taxes else [])],
            **values,
        }

    def _referral_discountable_per_tax(self, lines):
        """Amount of ``lines`` per group of taxes, taxes not included in the
        price left out (as sale_loyalty's discountable)."""
        AccountTax = self.env["account.tax"]
        base_lines = [
            self._prepare_product_base_line_for_taxes_computation(line)
            for line in lines
        ]
        AccountTax._add_tax_details_in_base_lines(base_lines, self.company_id)
        AccountTax._round_base_lines_tax_details(base_lines, self.company_id)
        per_tax = defaultdict(float)
        for base_line in base_lines:
            details = base_line["tax_details"]
            included = sum(
                tax_data["raw_tax_amount_currency"]
                for tax_data in details["taxes_data"]
                if tax_data["tax"].price_include
            )
            per_tax[base_line["tax_ids"].flatten_taxes_hierarchy()] += (
                details["raw_total_excluded_currency"] + included
            )
        return per_tax

    def _debit_referral_credit(self):
        """Spend the credit of posted invoices' own credit lines (lines from
        an order were debited when the order was confirmed)."""
        for move in self.filtered(lambda m: m.move_type == "out_invoice"):
            amounts = defaultdict(float)
            for line in move._get_referral_credit_lines(from_orders=False):
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
        """Reset to draft or cancelled: give back what the invoices spent
        (credit spent by their orders stays spent with the orders)."""
        for debit in self._get_referral_debits():
            debit._reverse(
                invoice_id=debit.invoice_id.id,
                name=self.env._(
                    "Credit released by %(move)s", move=debit.invoice_id.name
                ),
            )

    def _restore_refunded_referral_credit(self):
        """A posted credit note gives back the credit its invoice consumed,
        in proportion of the credit lines it refunds."""
        for refund in self.filtered(
            lambda m: m.move_type == "out_refund" and m.reversed_entry_id
        ):
            lines = refund._get_referral_credit_lines()
            if not lines:
                continue
            to_restore = refund._referral_to_company_currency(
                -sum(lines.mapped("price_total"))
            )
            origin_debits = refund.reversed_entry_id._get_referral_debits() | (
                lines.sale_line_ids._get_referral_credit_debits()
            )
            currency = refund.company_id.currency_id
            for debit in origin_debits:
                if currency.compare_amounts(to_restore, 0) <= 0:
                    break
                reversals = debit._reverse(
                    amount=currency.round(to_restore),
                    invoice_id=refund.id,
                    name=self.env._(
                        "Credit restored by %(refund)s", refund=refund.name
                    ),
                )
                to_restore -= sum(reversals.mapped("amount"))

    def _revoke_refunded_referral_rewards(self):
        """A referee's first order fully refunded: its sponsor loses the
        reward."""
        refunds = self.filtered(
            lambda m: m.move_type == "out_refund" and m.reversed_entry_id
        )
        fully_refunded = refunds.reversed_entry_id.filtered(
            lambda inv: inv.payment_state == "reversed"
            or inv.currency_id.compare_amounts(
                sum(
                    refunds.filtered(lambda r, i=inv: r.reversed_entry_id == i).mapped(
                        "amount_total"
                    )
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
