# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools import format_amount

# Changes that may leave a draft with more credit than goods.
REFERRAL_FIT_FIELDS = {
    "invoice_line_ids",
    "line_ids",
    "currency_id",
    "invoice_date",
    "move_type",
}


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

    referral_transaction_ids = fields.One2many(
        "referral.wallet.transaction",
        "account_move_id",
        string="Referral Credit Transactions",
        readonly=True,
        help="Wallet transactions this entry books.",
    )
    referral_credit_line_id = fields.Many2one(
        "account.move.line",
        string="Referral Credit Line",
        readonly=True,
        copy=False,
        index="btree_not_null",
        # A credit line is deleted only in a draft document, whose tax
        # shares net to zero.
        ondelete="set null",
        help="Credit line of an invoice or credit note whose tax share (what "
        "the wallet paid beyond the line's untaxed amount) this entry books "
        "on the credit liability.",
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
            wallet = wallets.get((move._referral_credit_partner(), move.company_id))
            move.referral_credit_available = (
                move._referral_from_company_currency(wallet.spendable_balance)
                if wallet
                else 0.0
            )

    @api.model
    def _get_referral_wallets(self, moves):
        """{(commercial partner, company): wallet} of ``moves``' customers
        (for an invoice made from orders, the orders' customer)."""
        partners = self.env["res.partner"].union(
            *(move._referral_credit_partner() for move in moves)
        )
        # sudo: whoever reads the invoice sees the credit it may use.
        wallets = (
            self.env["referral.wallet"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", partners.ids),
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

    @api.model_create_multi
    def create(self, vals_list):
        moves = super().create(vals_list)
        moves._referral_fit_credit()
        return moves

    def write(self, vals):
        moved = self._referral_lines_leaving_customer(vals, ("posted",))
        switched = self._referral_credit_notes_without_origin(vals)
        res = super().write(vals)
        if moved:
            moved._drop_referral_lines_of_former_customer()
        if switched:
            switched._drop_referral_credit_lines_of_credit_notes()
        if "state" in vals:
            # Posted, reset to draft, cancelled: what the credit lines spend
            # (and their orders' and credit notes') follows the state, and
            # so does the reward of a referee's first order.
            self.env["referral.ledger"]._sync(move_lines=self.invoice_line_ids)
            self._sync_referral_rewards()
        elif REFERRAL_FIT_FIELDS & set(vals):
            self._referral_fit_credit()
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
        # Bounded before it spends: a draft whose credit exceeds its goods
        # is fitted first, and a credit note never pays back in money what
        # was paid with credit.
        self._referral_fit_credit()
        self._check_referral_credit_note_money()
        self._referral_set_credit_accounts()
        posted = super()._post(soft=soft)
        posted._referral_set_credit_partners()
        return posted

    def _referral_set_credit_accounts(self):
        """Credit lines post to the program's credit liability account, for
        the sponsor whose wallet they spend (the orders' customer, even when
        the invoice goes to another address): spending credit lowers the
        liability, not the revenue."""
        lines = self.filtered(
            lambda m: m.move_type in ("out_invoice", "out_refund")
        )._get_referral_credit_lines()
        for company in lines.company_id:
            program = self.env["referral.program"]._get_books_program(company)
            if not program:
                continue
            for line in lines.filtered(lambda ln, c=company: ln.company_id == c):
                values = {}
                if line.account_id != program.credit_liability_account_id:
                    values["account_id"] = program.credit_liability_account_id.id
                if values:
                    line.sudo().write(values)

    def _referral_set_credit_partners(self):
        """Once posted (Odoo sets every line's partner to the invoice's
        customer), the lines on the credit liability account belong to the
        sponsor whose wallet the credit lines spend: the orders' customer
        when the invoice goes to another address."""
        for move in self.filtered(
            lambda m: m.move_type in ("out_invoice", "out_refund")
        ):
            credit_lines = move._get_referral_credit_lines()
            program = self.env["referral.program"]._get_books_program(move.company_id)
            if not credit_lines or not program:
                continue
            partner = credit_lines[0].referral_credit_wallet_id.partner_id
            liability = program.credit_liability_account_id
            move.line_ids.filtered(
                lambda ln, a=liability, p=partner: ln.account_id == a
                and ln.partner_id != p
            ).sudo().write({"partner_id": partner.id})

    def _invoice_paid_hook(self):
        res = super()._invoice_paid_hook()
        self.filtered(lambda m: m.move_type == "out_invoice")._sync_referral_rewards(
            announce_zero=True
        )
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
        # Built to fit the amount due: nothing to fit again.
        self.with_context(referral_ledger_fitting=True).write(
            {
                "invoice_line_ids": [Command.unlink(line.id) for line in previous]
                + [Command.create(vals) for vals in vals_list]
            }
        )

    def _referral_apply_credit_amount(self, wallet, amount):
        self._apply_referral_credit(wallet, amount)

    def _referral_check_credit_apply_access(self):
        """Billing users apply credit on invoices, salespeople do not."""
        if not self.env.su and not self.env.user.has_group(
            "account.group_account_invoice"
        ):
            raise AccessError(
                self.env._(
                    "You are not allowed to apply referral credit on invoices: "
                    "ask a billing user."
                )
            )
        return super()._referral_check_credit_apply_access()

    def _referral_credit_goods_amount(self):
        """The amount due before the credit applied on the invoice itself
        (which applying replaces); the credit of its orders stays."""
        self.ensure_one()
        return self.amount_residual - sum(
            self._get_referral_credit_lines(from_orders=False).mapped("price_total")
        )

    def _referral_credit_untaxed_base(self):
        return sum(self._referral_goods_lines().mapped("price_subtotal"))

    def _referral_credit_kept_amount(self):
        return -sum(
            self._get_referral_credit_lines(from_orders=True).mapped("price_total")
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

    def _sync_referral_rewards(self, announce_zero=False):
        """The referee's first order invoiced, refunded, reset, cancelled or
        paid: the ledger posts the reward its referral earns now."""
        orders = (
            self.line_ids.sale_line_ids.order_id
            | self.reversed_entry_id.line_ids.sale_line_ids.order_id
        )
        if not orders:
            return
        referrals = orders._get_reward_referrals()
        if referrals:
            self.env["referral.ledger"]._sync_rewards(
                referrals, announce_zero=announce_zero
            )

    # ------------------------------------------------------------------
    # Bounded by the goods
    # ------------------------------------------------------------------

    def _referral_fit_credit(self):
        """Fit the credit lines of these draft invoices and credit notes to
        what their other lines are worth (a total below zero because of
        credit shrinks the credit, with a message)."""
        if self.env.context.get("referral_ledger_fitting"):
            return
        drafts = self.filtered(
            lambda m: m.state == "draft"
            and m.move_type in ("out_invoice", "out_refund")
            and m.invoice_line_ids.filtered("referral_credit_wallet_id")
        )
        for move in drafts:
            move._referral_fit_credit_lines()

    def _check_referral_credit_note_money(self):
        """A credit note of an invoice (or of orders) paid partly with
        referral credit refunds in money at most what was charged in money:
        the rest goes back to the wallet through its credit lines. Refused
        otherwise: the credit would become a refund."""
        for refund in self.filtered(lambda m: m.move_type == "out_refund"):
            refunded_documents = refund._get_referral_refunded_documents()
            if refunded_documents is None:
                continue
            invoices, refunds = refunded_documents
            charged = sum(invoices.mapped("amount_total_signed"))
            refunded = -sum((refunds | refund).mapped("amount_total_signed"))
            currency = refund.company_id.currency_id
            if currency.compare_amounts(refunded, charged) > 0:
                raise UserError(
                    self.env._(
                        "%(refund)s would pay back %(refunded)s in all, more "
                        "than the %(charged)s charged (the rest was paid with "
                        "referral credit): the credit would become a refund. "
                        "Keep the credit lines of the credit note, in "
                        "proportion to what it refunds, so that the credit goes "
                        "back to the wallet.",
                        refund=refund.display_name,
                        refunded=format_amount(self.env, refunded, currency),
                        charged=format_amount(self.env, charged, currency),
                    )
                )

    def _get_referral_refunded_documents(self):
        """(posted invoices, other posted credit notes) of what this credit
        note refunds, when referral credit paid part of it: its invoice, or
        the orders its lines come from; None when no credit is involved."""
        self.ensure_one()
        origin = self.reversed_entry_id
        if origin:
            if origin.move_type != "out_invoice" or not (
                origin._get_referral_credit_lines()
            ):
                return None
            documents = origin | origin.reversal_move_ids
        else:
            orders = self.invoice_line_ids.sale_line_ids.order_id
            if not orders.order_line.filtered("referral_credit_wallet_id"):
                return None
            documents = orders.invoice_ids
        posted = documents.filtered(lambda m: m.state == "posted") - self
        return (
            posted.filtered(lambda m: m.move_type == "out_invoice"),
            posted.filtered(lambda m: m.move_type == "out_refund"),
        )

    def _referral_credit_notes_without_origin(self, vals):
        """Draft invoices about to become credit notes that refund no invoice:
        their credit lines would give back credit nobody spent."""
        if vals.get("move_type") != "out_refund":
            return self.browse()
        return self.filtered(
            lambda m: m.move_type == "out_invoice"
            and not m.reversed_entry_id
            and m._get_referral_credit_lines()
        )

    def _drop_referral_credit_lines_of_credit_notes(self):
        for move in self.filtered(lambda m: not m.reversed_entry_id):
            lines = move._get_referral_credit_lines()
            if not lines:
                continue
            move.with_context(referral_ledger_fitting=True).write(
                {"invoice_line_ids": [Command.unlink(line.id) for line in lines]}
            )
            move.message_post(
                body=self.env._(
                    "The referral credit lines were removed: a credit note gives "
                    "back the credit of the invoice it refunds, and this one "
                    "refunds none."
                )
            )

    def _referral_credit_partner(self):
        """The orders' customer for an invoice made from orders of one
        customer (an invoice address elsewhere does not move the credit),
        else the invoice's commercial entity."""
        self.ensure_one()
        customers = self.invoice_line_ids.sale_line_ids.order_id.partner_id
        customers = customers.commercial_partner_id
        if len(customers) == 1:
            return customers
        return self.partner_id.commercial_partner_id

    def _referral_goods_lines(self):
        return self.invoice_line_ids.filtered(
            lambda line: line.display_type == "product"
            and not line.referral_credit_wallet_id
        )
