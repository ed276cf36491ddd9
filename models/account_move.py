# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command, api, fields, models
from odoo.exceptions import UserError


class AccountMove(models.Model):
    _inherit = ["account.move", "referral.credit.mixin"]
    _name = "account.move"

    referral_credit_amount = fields.Monetary(
        string="Referral Credit Applied (Tax Incl.)",
        compute="_compute_referral_credit_amount",
        currency_field="currency_id",
        help="Wallet credit spent by this invoice, taxes included (given back "
        "by a credit note): what its credit lines take off the total. The "
        "lines themselves show their amounts without tax.",
    )
    referral_credit_available = fields.Monetary(
        string="Spendable Referral Credit",
        compute="_compute_referral_credit_available",
        currency_field="currency_id",
        help="Referral credit the customer can spend now, in the invoice "
        "currency: Apply Referral Credit takes it off this invoice.",
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
        moved = self._referral_lines_leaving_customer(vals, ("posted",))
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
            for move in new_moves:
                credit_lines = move._get_referral_credit_lines()
                if credit_lines:
                    move.write(
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
        vals_list = self._prepare_referral_credit_lines_values(
            program, wallet, amount, self._get_referral_discountable_lines()
        )
        previous = self._get_referral_credit_lines(from_orders=False)
        self.write(
            {
                "invoice_line_ids": [Command.unlink(line.id) for line in previous]
                + [Command.create(vals) for vals in vals_list]
            }
        )

    # ------------------------------------------------------------------
    # Credit lines (referral.credit.mixin hooks)
    # ------------------------------------------------------------------

    def _referral_credit_date(self):
        return self.invoice_date

    def _referral_lines_field(self):
        return "invoice_line_ids"

    def _referral_base_lines(self, lines):
        return [
            self._prepare_product_base_line_for_taxes_computation(line)
            for line in lines
        ]

    def _referral_base_line_values(self):
        return {"rate": self.invoice_currency_rate, "sign": self.direction_sign}

    def _prepare_referral_line_values(self, program, price, taxes=None, **values):
        self.ensure_one()
        taxes = taxes or self.env["account.tax"]
        return {
            "product_id": program.credit_product_id.id,
            "quantity": 1.0,
            "price_unit": price,
            "tax_ids": [Command.set(taxes.ids)],
            **values,
            "name": self._referral_line_name(
                values.get("name") or self.env._("Referral credit"), taxes
            ),
        }

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
