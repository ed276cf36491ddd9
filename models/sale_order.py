# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


from odoo import Command, api, fields, models
from odoo.exceptions import UserError


class SaleOrder(models.Model):
    _inherit = ["sale.order", "referral.credit.mixin"]
    _name = "sale.order"

    referral_credit_amount = fields.Monetary(
        string="Referral Credit Applied",
        compute="_compute_referral_credit_amount",
        currency_field="currency_id",
        help="Wallet credit spent by this order, taxes included.",
    )
    referral_credit_available = fields.Monetary(
        compute="_compute_referral_credit_available",
        currency_field="currency_id",
        help="Referral credit of the customer that is left to apply, in the "
        "order currency: on a quotation, its wallet's spendable balance less "
        "the credit already applied on it.",
    )
    referral_credit_uncovered = fields.Monetary(
        string="Credit No Longer Covered",
        compute="_compute_referral_credit_available",
        currency_field="currency_id",
        help="Part of the credit applied on this quotation that the customer's "
        "wallet no longer holds (spent or expired elsewhere since): Fit "
        "Referral Credit adjusts the credit lines to what is left.",
    )
    referral_auto_applied = fields.Boolean(
        copy=False,
        help="The program's automatic credit or welcome discount was applied "
        "once: removing those lines by hand is respected.",
    )

    @api.depends("order_line.price_total", "order_line.referral_credit_wallet_id")
    def _compute_referral_credit_amount(self):
        for order in self:
            order.referral_credit_amount = -sum(
                order.order_line.filtered("referral_credit_wallet_id").mapped(
                    "price_total"
                )
            )

    @api.depends(
        "partner_id",
        "company_id",
        "currency_id",
        "state",
        "order_line.price_total",
        "order_line.referral_credit_wallet_id",
    )
    def _compute_referral_credit_available(self):
        wallets = (
            self.env["referral.wallet"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", self.partner_id.commercial_partner_id.ids),
                    ("company_id", "in", self.company_id.ids),
                ]
            )
        )
        balances = {(w.partner_id, w.company_id): w.spendable_balance for w in wallets}
        for order in self:
            balance = order._referral_from_company_currency(
                balances.get(
                    (order.partner_id.commercial_partner_id, order.company_id), 0.0
                )
            )
            applied = (
                order.referral_credit_amount
                if order.state in ("draft", "sent")
                else 0.0
            )
            order.referral_credit_available = max(balance - applied, 0.0)
            order.referral_credit_uncovered = max(applied - balance, 0.0)

    @api.model_create_multi
    def create(self, vals_list):
        orders = super().create(vals_list)
        orders.filtered(
            lambda o: not o.source_id
        )._referred_orders()._set_referral_source()
        orders._auto_apply_referral_lines()
        return orders

    def write(self, vals):
        moved = self._referral_lines_leaving_customer(vals, ("sale",))
        res = super().write(vals)
        if moved:
            moved._drop_referral_lines_of_former_customer()
        if "state" in vals:
            # What the credit lines spend follows the orders' state.
            self.env["referral.ledger"]._sync(order_lines=self.order_line)
            # Sent, confirmed, cancelled: the customers' stages may move and
            # the follow-ups see it, done by the queue's job within a minute.
            # sudo: the stages follow the orders, whoever changes them.
            self.env["partner.lifecycle.queue"].sudo()._enqueue_orders(
                self, vals["state"]
            )
        if "order_line" in vals:
            self._auto_apply_referral_lines()
        return res

    def action_confirm(self):
        self._check_referral_welcome_discounts()
        return super().action_confirm()

    def _action_confirm(self):
        res = super()._action_confirm()
        self._link_referrals()
        return res

    def _on_queued_state_change(self, state, moments):
        """Run by the lifecycle queue's job within a minute after these orders
        reached ``state`` (``moments``: {order id: naive UTC datetime of the
        change}): what need not happen within the confirmation. A hook for
        the files of the other concerns."""
        return True

    def _action_cancel(self):
        res = super()._action_cancel()
        # sudo: the referral belongs to the sponsor's salesperson.
        referrals = (
            self.env["referral.referral"]
            .sudo()
            .search(
                [
                    ("first_order_id", "in", self.ids),
                    ("state", "in", ("won", "rewarded")),
                ]
            )
        )
        referrals._revoke_rewards(
            self.env._("the referee's first order was cancelled.")
        )
        return res

    def _get_copiable_order_lines(self):
        """A copy never carries referral credit nor the welcome discount (as
        sale_loyalty drops reward lines): they are applied again."""
        return (
            super()
            ._get_copiable_order_lines()
            .filtered(lambda line: not line._is_referral_line())
        )

    # ------------------------------------------------------------------
    # Referral credit and welcome discount
    # ------------------------------------------------------------------

    def action_apply_referral_credit(self):
        """Spend the customer's referral credit on these quotations: credit
        lines for the balance, at most the order total. Applying again
        replaces the previous credit lines."""
        for order in self:
            order._apply_referral_credit()
        return True

    def action_fit_referral_credit(self):
        """The way out of a quotation whose credit was spent elsewhere: fit
        its credit lines to what the wallet holds now, or remove them when
        nothing is left."""
        for order in self:
            order._apply_referral_credit(raise_if_nothing=False, remove_if_nothing=True)
        return True

    def _get_referral_program(self):
        self.ensure_one()
        # sudo: salespeople read the program's settings, not only managers.
        return self.env["referral.program"].sudo()._get_company_program(self.company_id)

    def _check_referral_credit_applicable(self, program):
        """Raise when the credit may not be spent on this order."""
        self.ensure_one()
        if self.state not in ("draft", "sent"):
            raise UserError(
                self.env._(
                    "Referral credit is applied on quotations only; %(order)s is "
                    "already confirmed or cancelled.",
                    order=self.name,
                )
            )
        if not program.credit_product_id:
            raise UserError(
                self.env._(
                    "Set a credit product on the referral program %(program)s first.",
                    program=program.display_name,
                )
            )
        if program.redeem_scope == "renewal" and not self.is_renewal:
            raise UserError(
                self.env._(
                    "The program %(program)s spends referral credit on "
                    "subscription renewals only, and %(order)s is not a renewal. "
                    "Tick Renewal on the order if it renews a subscription.",
                    program=program.display_name,
                    order=self.name,
                )
            )

    def _apply_referral_credit(self, raise_if_nothing=True, remove_if_nothing=False):
        """Replace the credit lines of this quotation by lines spending
        min(wallet balance, order total), taxes included; with
        ``remove_if_nothing``, remove them when the wallet is empty."""
        self.ensure_one()
        program = self._get_referral_program()
        self._check_referral_credit_applicable(program)
        wallet = self._get_referral_credit_wallet()
        previous = self.order_line.filtered("referral_credit_wallet_id")
        lines = self.order_line - previous
        amount = self._get_referral_credit_amount(wallet, lines)
        if self.currency_id.compare_amounts(amount, 0) <= 0:
            if raise_if_nothing:
                raise UserError(
                    self.env._(
                        "%(customer)s has no referral credit to spend on %(order)s.",
                        customer=self.partner_id.commercial_partner_id.display_name,
                        order=self.name,
                    )
                )
            if remove_if_nothing and previous:
                self.with_context(referral_skip_auto_apply=True).write(
                    {"order_line": [Command.unlink(line.id) for line in previous]}
                )
            return
        vals_list = self._prepare_referral_credit_lines_values(
            program, wallet, amount, lines
        )
        self.with_context(referral_skip_auto_apply=True).write(
            {
                "order_line": [Command.unlink(line.id) for line in previous]
                + [Command.create(vals) for vals in vals_list]
            }
        )

    def _get_referral_credit_amount(self, wallet, lines):
        """Credit to spend on ``lines``, in the order currency: the wallet
        balance, at most their total (taxes included)."""
        self.ensure_one()
        total = sum(lines.mapped("price_total"))
        if not wallet:
            return 0.0
        balance = self._referral_from_company_currency(wallet.spendable_balance)
        return self.currency_id.round(min(balance, total))

    def _referral_is_fully_refunded(self):
        """The posted credit notes of this order cover its total and leave
        nothing of it invoiced."""
        self.ensure_one()
        moves = self.sudo().invoice_ids.filtered(lambda m: m.state == "posted")
        invoiced = sum(
            moves.filtered(lambda m: m.move_type == "out_invoice").mapped(
                "amount_total"
            )
        )
        refunded = sum(
            moves.filtered(lambda m: m.move_type == "out_refund").mapped("amount_total")
        )
        currency = self.currency_id
        return bool(refunded) and (
            currency.compare_amounts(refunded, self.amount_total) >= 0
            and currency.compare_amounts(invoiced, refunded) <= 0
        )

    def _auto_apply_referral_lines(self):
        """Welcome discount on the first quotation of a referred customer and
        credit on renewal quotations, when the program says so."""
        if self.env.context.get("referral_skip_auto_apply"):
            return
        programs = {}
        for order in self.filtered(
            lambda o: o.state in ("draft", "sent")
            and not o.referral_auto_applied
            and o.order_line.filtered(lambda line: not line._is_referral_line())
        ):
            if order.company_id not in programs:
                programs[order.company_id] = order._get_referral_program()
            program = programs[order.company_id]
            if not program.credit_product_id or not (
                program.referee_discount_auto_apply or program.auto_apply_on_renewal
            ):
                continue
            if (
                program.referee_discount_auto_apply
                and order.referral_welcome_discount_available
            ):
                order._apply_referral_welcome_discount(raise_if_nothing=False)
            if (
                program.auto_apply_on_renewal
                and order.is_renewal
                and not order.order_line.filtered("referral_credit_wallet_id")
                and order.referral_credit_available
            ):
                order._apply_referral_credit(raise_if_nothing=False)
            if order.order_line.filtered(lambda line: line._is_referral_line()):
                order.with_context(referral_skip_auto_apply=True).write(
                    {"referral_auto_applied": True}
                )

    # ------------------------------------------------------------------
    # Credit lines (referral.credit.mixin hooks)
    # ------------------------------------------------------------------

    def _referral_credit_date(self):
        return self.date_order

    def _referral_lines_field(self):
        return "order_line"

    def _referral_base_lines(self, lines):
        return [
            line._prepare_base_line_for_taxes_computation()
            for line in lines.filtered(lambda line: not line.display_type)
        ]

    def _referral_base_line_values(self):
        return {"rate": self.currency_rate}

    def _prepare_referral_line_values(self, program, price, taxes=None, **values):
        self.ensure_one()
        product = program.credit_product_id
        taxes = taxes or self.env["account.tax"]
        return {
            "product_id": product.id,
            "product_uom_qty": 1.0,
            "product_uom": product.uom_id.id,
            "price_unit": price,
            "tax_id": [Command.set(taxes.ids)],
            "sequence": max(self.order_line.mapped("sequence"), default=10) + 1,
            **values,
            "name": self._referral_line_name(
                values.get("name") or self.env._("Referral credit"), taxes
            ),
        }

    def _get_update_prices_lines(self):
        """Updating the prices keeps the referral lines' amounts."""
        return (
            super()
            ._get_update_prices_lines()
            .filtered(lambda line: not line._is_referral_line())
        )
