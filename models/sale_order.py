# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The sales order in this addon, in sections: its referral (the code
typed, the referral its first order wins, the Referral source), renewals,
the referral credit and the welcome discount it carries (credit lines built
by ``referral.credit.mixin``, spent by ``referral.ledger``), and what its
state changes set off in the lifecycle queue's job (rewards, follow-ups)."""

from collections import defaultdict

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, create_index, float_compare, format_amount

from .local_day import company_day
from .referral.referral_code import normalize_referral_code
from .referral.referral_referral import ACCEPTED_STATES, ACTIVE_STATES, OPEN_STATES

# Follow-up rules woken up when an order reaches a state.
STATE_TRIGGERS = {"sent": "quote_sent", "sale": "order_confirmed"}


class SaleOrder(models.Model):
    _inherit = ["sale.order", "referral.credit.mixin"]
    _name = "sale.order"

    referral_credit_amount = fields.Monetary(
        string="Referral Credit Applied (Tax Incl.)",
        compute="_compute_referral_credit_amount",
        currency_field="currency_id",
        help="Wallet credit spent by this order, taxes included: what its "
        "credit lines take off the total. The lines themselves show their "
        "amounts without tax.",
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
    quotation_sent_date = fields.Datetime(
        string="First Sent On",
        copy=False,
        readonly=True,
        help="When the quotation was first sent (or marked as sent): the "
        "moment the quotation follow-ups count from.",
    )
    quotation_last_sent_date = fields.Datetime(
        string="Last Sent On",
        copy=False,
        readonly=True,
        help="When the quotation was last sent: the follow-up rules that "
        "start again on each sending count from it.",
    )
    referral_code = fields.Char(
        copy=False,
        help="Referral code of the customer who referred this one. On "
        "confirmation the order is linked to that customer's referral.",
    )
    # Its company is checked by _check_referral_company: Odoo's check of a
    # check_company field would check every such field of the order (two
    # reads) each time a confirmation links it.
    referral_id = fields.Many2one(
        "referral.referral",
        readonly=True,
        copy=False,
        index="btree_not_null",
    )
    referral_code_sponsor_id = fields.Many2one(
        "res.partner",
        string="Referred By",
        compute="_compute_referral_code_sponsor_id",
        help="Customer whose referral code was typed: the order is linked to "
        "its referral on confirmation.",
    )
    is_renewal = fields.Boolean(
        compute="_compute_is_renewal",
        store=True,
        readonly=False,
        tracking=True,
        copy=False,
        help="The order holds a subscription product and the customer already "
        "bought one: referral credit can be spent on it.",
    )
    referral_welcome_discount_available = fields.Boolean(
        compute="_compute_referral_welcome_discount_available"
    )

    def init(self):
        # The quotations sent whose follow-ups count from a window of dates
        # (their chase moment, ``_quote_sent_moment_sql`` of the follow-up
        # engine): each batch of the cron reads those, not every quotation
        # sent.
        for column in ("quotation_sent_date", "quotation_last_sent_date"):
            create_index(
                self.env.cr,
                f"sale_order_sent_{column}_moment_index",
                "sale_order",
                [f"COALESCE({column}, date_order)"],
                where="state = 'sent'",
            )
        return super().init()

    @api.constrains("referral_code", "partner_id")
    def _check_referral_code(self):
        orders = self.filtered("referral_code")
        sponsors = self.env["res.partner"]._find_by_referral_code(
            orders.mapped("referral_code")
        )
        for order in orders:
            sponsor = sponsors.get(normalize_referral_code(order.referral_code))
            if not sponsor:
                raise ValidationError(
                    self.env._(
                        "No customer has the referral code %(code)s. Check the "
                        "code with the customer or leave it empty.",
                        code=order.referral_code,
                    )
                )
            if sponsor == order.partner_id.commercial_partner_id:
                raise ValidationError(
                    self.env._(
                        "The referral code %(code)s is the customer's own code: "
                        "a customer cannot refer itself.",
                        code=order.referral_code,
                    )
                )
            program = (
                self.env["referral.program"]
                .sudo()
                ._get_company_program(order.company_id)
            )
            # sudo: eligibility reads the sponsor's orders, whoever owns them.
            if program and not program._is_sponsor_eligible(sponsor):
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s (code %(code)s) may not sponsor in the "
                        "program %(program)s: see who may sponsor in the "
                        "program's settings.",
                        sponsor=sponsor.display_name,
                        code=order.referral_code,
                        program=program.display_name,
                    )
                )

    @api.constrains("referral_id", "company_id")
    def _check_referral_company(self):
        for order in self:
            # sudo: the referral belongs to the sponsor's salesperson.
            referral = order.sudo().referral_id
            if referral and referral.company_id != order.company_id:
                raise ValidationError(
                    self.env._(
                        "%(order)s belongs to %(company)s: it cannot be linked "
                        "to the referral %(referral)s of another company.",
                        order=order.display_name,
                        company=order.company_id.display_name,
                        referral=referral.display_name,
                    )
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

    @api.depends("referral_code")
    def _compute_referral_code_sponsor_id(self):
        codes = {order: normalize_referral_code(order.referral_code) for order in self}
        sponsors = self.env["res.partner"]._find_by_referral_code(codes.values())
        for order in self:
            order.referral_code_sponsor_id = sponsors.get(codes[order], False)

    @api.depends("order_line.product_id", "partner_id", "company_id")
    def _compute_is_renewal(self):
        """A subscription order is a renewal when its customer (commercial
        entity) already had a subscription in the order's company: a
        subscription order of the same company confirmed before it, or, for a
        quotation, a subscription end date in that company (which a confirmed
        order may have set itself). Another company's subscription never
        makes an order a renewal."""
        subscription_orders = self.filtered(
            lambda o: any(
                line.product_template_id.subscription_months > 0
                for line in o.order_line
            )
        )
        (self - subscription_orders).is_renewal = False
        if not subscription_orders:
            return
        customers = subscription_orders.partner_id.commercial_partner_id
        # sudo: the customer's other orders may belong to other salespeople.
        earlier = defaultdict(list)
        for previous in (
            self.env["sale.order"]
            .sudo()
            .search_fetch(
                [
                    ("state", "=", "sale"),
                    ("order_line.product_template_id.subscription_months", ">", 0),
                    ("partner_id", "child_of", customers.ids),
                    ("company_id", "in", subscription_orders.company_id.ids),
                ],
                ["partner_id", "company_id", "date_order"],
            )
        ):
            key = (previous.partner_id.commercial_partner_id, previous.company_id)
            earlier[key].append(previous)
        for order in subscription_orders:
            customer = order.partner_id.commercial_partner_id
            previous_orders = [
                previous
                for previous in earlier[customer, order.company_id]
                if previous.id != order.id
            ]
            if order.state in ("draft", "sent"):
                # The subscription bought in the order's company only.
                order.is_renewal = bool(
                    previous_orders
                    or customer.with_company(order.company_id).subscription_end_date
                )
            else:
                # Confirmed in the same second: the first created came first.
                order.is_renewal = any(
                    (previous.date_order, previous.id) < (order.date_order, order.id)
                    for previous in previous_orders
                )

    @api.depends("partner_id", "company_id", "state", "order_line")
    def _compute_referral_welcome_discount_available(self):
        referred = self._referred_orders()
        for order in self:
            program = order._get_referral_program()
            order.referral_welcome_discount_available = bool(
                order in referred
                and order.state in ("draft", "sent")
                and program.referee_discount_percent
                and not order.order_line.filtered("is_referral_welcome_discount")
            )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        """Orders created in this order of steps: the referral code
        normalised, the sponsor's code of a referral link filled in, then the
        records, the Referral source of referred customers, and the
        program's automatic lines (welcome discount, renewal credit)."""
        for vals in vals_list:
            self._normalize_referral_code(vals)
        self._fill_referral_link_codes(vals_list)
        orders = super().create(vals_list)
        orders._drop_foreign_referral_links()
        orders.filtered(
            lambda o: not o.source_id
        )._referred_orders()._set_referral_source()
        orders._auto_apply_referral_lines()
        return orders

    def write(self, vals):
        """A customer change drops the credit of the former customer, a state
        change syncs what the credit lines spend and queues the customers'
        lifecycle, new lines get the program's automatic lines."""
        self._normalize_referral_code(vals)
        if vals.get("state") == "sent":
            # The moment the quotation follow-ups count from.
            vals = dict(vals, quotation_last_sent_date=fields.Datetime.now())
            first = self.filtered(lambda o: not o.quotation_sent_date)
        moved = self._referral_lines_leaving_customer(vals, ("sale",))
        # Line changes fit the credit once, after all of them.
        res = super(SaleOrder, self.with_context(referral_fit_later=True)).write(vals)
        if vals.get("state") == "sent" and first:
            first.write({"quotation_sent_date": vals["quotation_last_sent_date"]})
        if "partner_id" in vals:
            self._drop_foreign_referral_links()
        if moved:
            moved._drop_referral_lines_of_former_customer()
        if "state" in vals:
            # What the credit lines spend follows the orders' state.
            self.env["referral.ledger"]._sync(order_lines=self.order_line)
        elif {"order_line", "date_order"} & set(vals):
            self._referral_sync_credit()
        if "state" in vals:
            # Sent, confirmed, cancelled: the customers' stages may move and
            # the follow-ups see it, done by the queue's job within a minute.
            # sudo: the stages follow the orders, whoever changes them.
            self.env["partner.lifecycle.queue"].sudo()._enqueue_orders(
                self, vals["state"]
            )
        if "order_line" in vals:
            self._auto_apply_referral_lines()
        return res

    @api.model
    def _normalize_referral_code(self, vals):
        if vals.get("referral_code"):
            vals["referral_code"] = (
                normalize_referral_code(vals["referral_code"]) or False
            )

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_apply_referral_credit(self):
        """Spend the customer's referral credit on these quotations: credit
        lines for what the program and the sponsor allow, at most the
        balance and the order total. Applying again replaces the previous
        credit lines."""
        for order in self:
            order._apply_referral_credit()
        return True

    def action_open_referral_credit_wizard(self):
        """Apply Referral Credit: the amount to spend on the quotation,
        proposed by the program and the sponsor's choice."""
        self.ensure_one()
        self._check_referral_credit_applicable(self._get_referral_program())
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Apply Referral Credit"),
            "res_model": "referral.credit.apply.wizard",
            "view_mode": "form",
            "target": "new",
            "context": {"default_order_id": self.id},
        }

    def action_fit_referral_credit(self):
        """The way out of a quotation whose credit was spent elsewhere: fit
        its credit lines to what the wallet holds now, or remove them when
        nothing is left."""
        for order in self:
            order._apply_referral_credit(raise_if_nothing=False, remove_if_nothing=True)
        return True

    def action_apply_referral_welcome_discount(self):
        """Give the referred customer its welcome discount, once."""
        for order in self:
            order._apply_referral_welcome_discount()
        return True

    # ------------------------------------------------------------------
    # Odoo's flows: confirmation, cancellation, copies, prices
    # ------------------------------------------------------------------

    def action_confirm(self):
        self._check_referral_welcome_discounts()
        return super().action_confirm()

    def _action_confirm(self):
        res = super()._action_confirm()
        self._link_referrals()
        return res

    def _action_cancel(self):
        res = super()._action_cancel()
        # A cancelled first order no longer earns its sponsor's reward.
        self.env["referral.ledger"]._sync_rewards(self._get_reward_referrals())
        return res

    def _on_queued_state_change(self, state, moments):
        """Run by the lifecycle queue's job within a minute after these orders
        reached ``state`` (``moments``: {order id: naive UTC datetime of the
        change}): what need not happen within the confirmation, in this
        order: the sponsors' rewards of confirmed first orders, then the
        follow-ups' stop conditions and cron wake-ups."""
        if state == "sale":
            self._grant_referral_rewards()
        self._followup_on_state_change(state, moments)
        return True

    def message_post(self, **kwargs):
        """A quotation sent again by email: its last sending moves (the
        first sending of a draft is its state change)."""
        if self.env.context.get("mark_so_as_sent"):
            again = self.filtered(lambda o: o.state == "sent")
            if again:
                # sudo: who may send the quotation may date its sending.
                again.sudo().quotation_last_sent_date = fields.Datetime.now()
        message = super().message_post(**kwargs)
        if kwargs.get("subtype_xmlid") == "sale.mt_order_viewed":
            # The portal's "Quotation viewed": a signal for the follow-ups.
            # sudo: the portal user may not read the follow-ups.
            Signal = self.env["partner.followup.signal"].sudo()
            for order in self:
                Signal._record(
                    "quote_viewed", order.partner_id, order.company_id, order
                )
        return message

    def _get_copiable_order_lines(self):
        """A copy never carries referral credit nor the welcome discount (as
        sale_loyalty drops reward lines): they are applied again."""
        return (
            super()
            ._get_copiable_order_lines()
            .filtered(lambda line: not line._is_referral_line())
        )

    def _get_update_prices_lines(self):
        """Updating the prices keeps the referral lines' amounts."""
        return (
            super()
            ._get_update_prices_lines()
            .filtered(lambda line: not line._is_referral_line())
        )

    # ------------------------------------------------------------------
    # Referral: the code typed, the referral won, the Referral source
    # ------------------------------------------------------------------

    @api.model
    def default_get(self, fields_list):
        """A quotation made from a referral (its New Quotation button) is
        linked to that referral from the start."""
        defaults = super().default_get(fields_list)
        referral_id = self.env.context.get("referral_quotation_referral_id")
        if referral_id and "referral_id" in fields_list:
            defaults.setdefault("referral_id", referral_id)
        return defaults

    def _drop_foreign_referral_links(self):
        """An order belongs to a referral of its own customer only: the
        quotations made in a referral's New Quotation for another customer,
        or whose customer changed, lose the link."""
        self.filtered(
            lambda o: o.referral_id
            and o.referral_id.sudo().referee_id != o.partner_id.commercial_partner_id
        ).referral_id = False

    @api.model
    def _fill_referral_link_codes(self, vals_list):
        """Quotations of a company referred through a sponsor's public link
        (``/r/<code>``), still open, get the sponsor's code when none was
        typed: the salesperson sees who referred the customer."""
        todo = [
            v for v in vals_list if v.get("partner_id") and not v.get("referral_code")
        ]
        if not todo:
            return
        partners = self.env["res.partner"].browse({v["partner_id"] for v in todo})
        # sudo: the referral belongs to the sponsor's salesperson.
        referrals = (
            self.env["referral.referral"]
            .sudo()
            .search(
                [
                    ("referee_id", "in", partners.commercial_partner_id.ids),
                    ("source", "=", "code"),
                    ("state", "in", OPEN_STATES),
                ]
            )
        )
        if not referrals:
            return
        for vals in todo:
            referee = self.env["res.partner"].browse(vals["partner_id"])
            company_id = vals.get("company_id") or self.env.company.id
            referral = referrals.filtered(
                lambda r, p=referee.commercial_partner_id, c=company_id: (
                    r.referee_id == p and r.company_id.id == c
                )
            )[:1]
            sponsor = referral.sponsor_id
            if sponsor.active and referral.program_id._is_sponsor_eligible(sponsor):
                vals["referral_code"] = sponsor.referral_code

    def _referred_orders(self):
        """The orders whose customer has an active referral in the order's
        company (one query)."""
        if not self:
            return self
        # sudo: the referral belongs to the sponsor's salesperson.
        referred = {
            (referee.id, company.id)
            for referee, company in self.env["referral.referral"]
            .sudo()
            ._read_group(
                [
                    ("referee_id", "in", self.partner_id.commercial_partner_id.ids),
                    ("company_id", "in", self.company_id.ids),
                    ("state", "in", ACCEPTED_STATES),
                ],
                ["referee_id", "company_id"],
            )
        }
        return self.filtered(
            lambda o: (o.partner_id.commercial_partner_id.id, o.company_id.id)
            in referred
        )

    def _set_referral_source(self):
        # The id is cached: no query to find the source (as env.ref does).
        source_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "sale_referral_lifecycle.utm_source_referral", raise_if_not_found=False
        )
        if source_id and self:
            self.write({"source_id": source_id})

    def _link_referrals(self):
        """Link confirmed orders to their customer's referral: create the
        referral a typed code asks for, and mark won the referrals of the
        customers confirming their first order."""
        coded = self.filtered("referral_code")
        if not coded and not self._has_referred_customer():
            # A plain order: no code typed, and its customer has no active
            # referral: nothing more to read.
            return
        # The sponsors of the codes typed, read with the customers and the
        # user's contact (the author of the referrals' creation message).
        sponsors = self.env["res.partner"]._find_by_referral_code(
            coded.mapped("referral_code"),
            with_contacts=self.partner_id | self.env.user.partner_id,
        )
        referees = self.partner_id.commercial_partner_id
        # The referral of a customer belongs to the sponsor's salesperson,
        # who may not be the one confirming the order. Read through the
        # referees: the sponsor they get, recomputed after a creation, reads
        # the same referrals.
        Referral = self.env["referral.referral"].sudo()
        referrals = referees.sudo().referee_referral_ids.filtered(
            lambda r: r.company_id in self.company_id and r.state in ACTIVE_STATES
        )
        if not referrals and not coded:
            return
        known = {(r.referee_id, r.company_id) for r in referrals}
        vals_list = coded._prepare_code_referral_values(known, sponsors)
        # Born won from their first order: no second write to win them (the
        # one flow that creates a referral in another state than New). The
        # user confirming the order does not follow them: they belong to the
        # sponsor's salesperson.
        # The active referrals of these referees were searched just above:
        # not searched again by the creation.
        checked = {(r.id, c.id) for r in referees for c in self.company_id}
        created = (
            Referral.with_context(mail_create_nosubscribe=True)
            ._flow_create(vals_list, active_checked=checked)
            .with_env(Referral.env)
            if vals_list
            else Referral
        )
        referrals |= created
        won = referrals.filtered(lambda r: r.state in OPEN_STATES) | created
        won._action_won(self)
        for order in self.filtered(lambda o: not o.referral_id):
            referral = referrals.filtered(
                lambda r, o=order: (
                    r.referee_id == o.partner_id.commercial_partner_id
                    and r.company_id == o.company_id
                )
            )[:1]
            if referral:
                # Not a tracked field (see referral.referral._action_won).
                order.with_context(mail_notrack=True).referral_id = referral
        self.filtered(
            lambda o: o.referral_id and not o.source_id
        )._set_referral_source()

    def _has_referred_customer(self):
        """Whether the customer of one of these orders has an active
        referral (its commercial entity's stored sponsor says so): one query,
        without loading the contacts."""
        self.env["res.partner"].flush_model(["commercial_partner_id", "sponsor_id"])
        return bool(
            self.env.execute_query(
                SQL(
                    """
                    SELECT 1
                      FROM res_partner p
                      JOIN res_partner c ON c.id = p.commercial_partner_id
                     WHERE p.id = ANY(%s) AND c.sponsor_id IS NOT NULL
                     LIMIT 1
                    """,
                    self.partner_id.ids,
                )
            )
        )

    def _grant_referral_rewards(self):
        """Reward the sponsors of the referrals these confirmed orders won,
        in programs rewarding at confirmation; tell the sponsors not rewarded
        (reward waiting for approval, zero or capped) that their referral
        ordered. Run by the lifecycle queue's job, not within the
        confirmation; once per referral whatever runs it again (the ledger
        posts the difference with what the referral already holds)."""
        referrals = self._get_reward_referrals().filtered(
            lambda r: r.program_id.reward_trigger == "order_confirmed"
        )
        if not referrals:
            return
        referrals._grant_rewards()
        referrals._queue_won_email()

    def _get_reward_referrals(self):
        """The referrals whose reward these orders may earn (won by them or
        linked to them)."""
        # sudo: the referral belongs to the sponsor's salesperson.
        Referral = self.env["referral.referral"].sudo()
        if not self:
            return Referral
        return self.sudo().referral_id | Referral.search(
            [("first_order_id", "in", self.ids)]
        )

    def _prepare_code_referral_values(self, known, sponsors):
        """Values of the referrals to create for the codes typed on these
        orders, skipping customers already referred (``known`` holds
        ``(referee, company)`` pairs); ``sponsors``: ``{code: sponsor}``
        (``res.partner._find_by_referral_code``)."""
        vals_list = []
        Program = self.env["referral.program"].sudo()
        for order in self:
            referee = order.partner_id.commercial_partner_id
            if (referee, order.company_id) in known:
                continue
            sponsor = sponsors.get(normalize_referral_code(order.referral_code))
            if not sponsor:
                # Regenerated or archived since it was typed.
                raise ValidationError(
                    self.env._(
                        "The referral code %(code)s of %(order)s is no longer "
                        "valid: ask the customer for the current one or clear "
                        "it.",
                        code=order.referral_code,
                        order=order.name,
                    )
                )
            known.add((referee, order.company_id))
            vals_list.append(
                {
                    "sponsor_id": sponsor.id,
                    "referee_id": referee.id,
                    "company_id": order.company_id.id,
                    "source": "code",
                    "first_order_id": order.id,
                    "state": "won",
                    "date_won": fields.Datetime.now(),
                    # Read once here rather than by each check of the creation.
                    "program_id": Program._get_company_program(order.company_id).id,
                }
            )
        return vals_list

    # ------------------------------------------------------------------
    # Referral credit
    # ------------------------------------------------------------------

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

    def _apply_referral_credit(
        self, raise_if_nothing=True, remove_if_nothing=False, automatic=False
    ):
        """Replace the credit lines of this quotation by lines spending what
        the program and the sponsor allow (at most the wallet balance and
        the order total, taxes included); ``automatic``: only when the
        sponsor chose automatic application; ``remove_if_nothing`` (fitting
        credit spent elsewhere): lines for what is left of the wallet, at
        most the order total, removed when the wallet is empty."""
        self.ensure_one()
        program = self._get_referral_program()
        self._check_referral_credit_applicable(program)
        wallet = self._get_referral_credit_wallet()
        if automatic and wallet and not wallet.renewal_auto_apply:
            return
        previous = self.order_line.filtered("referral_credit_wallet_id")
        if remove_if_nothing:
            # Fitting lowers the credit to what the wallet holds; the amount
            # itself was chosen when it was applied.
            amount = min(self._referral_credit_bounds(wallet).values())
        else:
            amount = self._referral_credit_allowed_amount(wallet, program)
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
        self._replace_referral_credit_lines(program, wallet, amount)

    def _referral_apply_credit_amount(self, wallet, amount):
        program = self._get_referral_program()
        self._check_referral_credit_applicable(program)
        self._replace_referral_credit_lines(program, wallet, amount)

    def _replace_referral_credit_lines(self, program, wallet, amount):
        """Replace the credit lines of this quotation by lines spending
        ``amount`` (order currency, taxes included) of ``wallet``."""
        self.ensure_one()
        previous = self.order_line.filtered("referral_credit_wallet_id")
        vals_list = self._prepare_referral_credit_lines_values(
            program, wallet, amount, self.order_line - previous
        )
        wallet._lock_referenced()
        # Built to fit the order's total: nothing to fit again.
        self.with_context(
            referral_skip_auto_apply=True, referral_ledger_fitting=True
        ).write(
            {
                "order_line": [Command.unlink(line.id) for line in previous]
                + [Command.create(vals) for vals in vals_list]
            }
        )

    def _referral_credit_goods_amount(self):
        return sum(
            self.order_line.filtered(
                lambda line: not line.referral_credit_wallet_id
            ).mapped("price_total")
        )

    def _referral_credit_untaxed_base(self):
        return sum(
            self.order_line.filtered(
                lambda line: not line.referral_credit_wallet_id
            ).mapped("price_subtotal")
        )

    def _referral_fit_after_line_change(self):
        """A line changed outside an order's write: fit the credit now (an
        order's write fits it once, after all its lines)."""
        if not self.env.context.get("referral_fit_later"):
            self._referral_sync_credit()

    def _referral_sync_credit(self):
        """Lines changed: fit the credit of these orders to their goods (and
        give back what a confirmed order spent beyond them)."""
        if self.env.context.get("referral_ledger_fitting"):
            return
        orders = self.filtered(
            lambda o: o.order_line.filtered("referral_credit_wallet_id")
        )
        confirmed = orders.filtered(lambda o: o.state == "sale")
        for quotation in (orders - confirmed).filtered(
            lambda o: o.state in ("draft", "sent")
        ):
            # A quotation spends nothing: fitting it is enough.
            quotation._referral_fit_credit_lines()
        if confirmed:
            self.env["referral.ledger"]._sync(
                order_lines=confirmed.order_line.filtered("referral_credit_wallet_id")
            )

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
                order._apply_referral_credit(raise_if_nothing=False, automatic=True)
            if order.order_line.filtered(lambda line: line._is_referral_line()):
                order.with_context(referral_skip_auto_apply=True).write(
                    {"referral_auto_applied": True}
                )

    # ------------------------------------------------------------------
    # Welcome discount
    # ------------------------------------------------------------------

    def _check_referral_welcome_discounts(self):
        """Only the referee's first confirmed order keeps the welcome
        discount: the other orders confirmed lose it, with a message."""
        orders = self.filtered(
            lambda o: o.order_line.filtered("is_referral_welcome_discount")
        )
        first = set()
        for order in orders.sorted(lambda o: (o.date_order, o.id)):
            key = (order.partner_id.commercial_partner_id, order.company_id)
            if key not in first and not order._referral_customer_has_ordered():
                first.add(key)
                continue
            lines = order.order_line.filtered("is_referral_welcome_discount")
            order.with_context(referral_skip_auto_apply=True).write(
                {"order_line": [Command.unlink(line.id) for line in lines]}
            )
            order.message_post(
                body=self.env._(
                    "The welcome discount was removed: it is for the first "
                    "order of a referred customer, and %(customer)s has "
                    "already ordered.",
                    customer=order.partner_id.commercial_partner_id.display_name,
                )
            )

    def _apply_referral_welcome_discount(self, raise_if_nothing=True):
        self.ensure_one()
        program = self._get_referral_program()
        if not self.referral_welcome_discount_available:
            if raise_if_nothing:
                raise UserError(
                    self.env._(
                        "%(order)s gets no welcome discount: it must be a quotation "
                        "of a referred customer, in a program with a welcome "
                        "discount, and the discount is given once.",
                        order=self.name,
                    )
                )
            return
        if self._referral_customer_has_ordered():
            if raise_if_nothing:
                raise UserError(
                    self.env._(
                        "The welcome discount is for the first order of a referred "
                        "customer; %(customer)s has already ordered.",
                        customer=self.partner_id.commercial_partner_id.display_name,
                    )
                )
            return
        lines = self.order_line.filtered(lambda line: not line._is_referral_line())
        product = program._get_welcome_discount_product()
        if not lines or not product:
            return
        vals_list = self._prepare_referral_discount_lines_values(
            program,
            lines,
            program.referee_discount_percent / 100,
            product_id=product.id,
            product_uom=product.uom_id.id,
            is_referral_welcome_discount=True,
            name=self.env._(
                "Welcome discount (%(percent)s%%)",
                # Not an f-string: the translation extractor evaluates those.
                percent=format(program.referee_discount_percent, "g"),
            ),
        )
        self.with_context(referral_skip_auto_apply=True).write(
            {"order_line": [Command.create(v) for v in vals_list]}
        )

    def _referral_customer_has_ordered(self):
        """Whether the customer of this order already confirmed another order
        in the order's company."""
        self.ensure_one()
        return bool(
            self.partner_id._get_company_customers(self.company_id, exclude_orders=self)
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

    def _referral_goods_lines(self):
        return self.order_line.filtered(
            lambda line: not line.display_type and not line.referral_credit_wallet_id
        )

    def _referral_check_credit_fittable(self, lines):
        """A confirmed order's credit already invoiced no longer shrinks: its
        invoices carry it."""
        invoiced = lines.filtered(
            lambda line: line.state == "sale"
            and float_compare(
                line.qty_invoiced, 0.0, precision_rounding=line.product_uom.rounding
            )
            > 0
        )
        if invoiced:
            raise UserError(
                self.env._(
                    "%(order)s would be worth less than the %(amount)s of "
                    "referral credit it carries, and that credit is already on "
                    "its invoices (%(invoices)s): the credit would become a "
                    "refund. Refund or cancel those invoices first (the credit "
                    "goes back to the wallet), then change the order.",
                    order=self.name,
                    amount=format_amount(
                        self.env, -sum(lines.mapped("price_total")), self.currency_id
                    ),
                    invoices=", ".join(
                        invoiced.invoice_lines.move_id.filtered(
                            lambda m: m.state != "cancel"
                        ).mapped("display_name")
                    ),
                )
            )
        return True

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

    # ------------------------------------------------------------------
    # Follow-ups
    # ------------------------------------------------------------------

    def _followup_on_state_change(self, state, moments):
        """Stop conditions of the follow-ups whose source is an order, and
        cron triggers for the steps the new state will make due. Run by the
        lifecycle queue's job after the change (``moments``: {order id: naive
        UTC datetime of the change}), not within the confirmation."""
        Engine = self.env["partner.followup.engine"]
        if state in ("sale", "cancel"):
            Engine._cancel_closed_source_activities(self, state)
        trigger = STATE_TRIGGERS.get(state)
        if not trigger:
            return
        for order in self:
            # The day of the change where the company works.
            moment = moments.get(order.id) or fields.Datetime.now()
            day = company_day(order.company_id, moment)
            Engine._schedule_cron_at_commit(trigger, order.company_id, day)
