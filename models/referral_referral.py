# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import email_normalize, format_amount

from .referral_wallet_transaction import APPROVER_GROUP

ACTIVE_STATES = ("new", "in_progress", "won", "rewarded")
OPEN_STATES = ("new", "in_progress")
# Fields a won or rewarded referral changes only through its actions.
LOCKED_WHEN_WON = {"sponsor_id", "referee_id", "program_id", "first_order_id", "state"}
# Closed for the salesperson: nobody has to call anymore.
CLOSED_STATES = ("won", "rewarded", "lost", "rejected")
# Kanban columns shown even when empty.
KANBAN_STATES = ("new", "in_progress", "won", "rewarded")
STATE_DATE_FIELDS = {
    "in_progress": "date_in_progress",
    "won": "date_won",
    "rewarded": "date_rewarded",
    "lost": "date_closed",
    "rejected": "date_closed",
}


class ReferralReferral(models.Model):
    _name = "referral.referral"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "Referral"
    _order = "date_referral desc, id desc"
    _check_company_auto = True

    name = fields.Char(
        string="Reference",
        required=True,
        readonly=True,
        copy=False,
        default=lambda self: self.env._("New"),
    )
    source = fields.Selection(
        [
            ("portal", "Portal"),
            ("backend", "Back office"),
            ("code", "Referral code"),
            ("import", "Import"),
        ],
        required=True,
        default="backend",
        help="How the referral reached the company.",
    )
    state = fields.Selection(
        [
            ("new", "New"),
            ("in_progress", "In Progress"),
            ("won", "Won"),
            ("rewarded", "Rewarded"),
            ("lost", "Lost"),
            ("rejected", "Rejected"),
        ],
        string="Status",
        required=True,
        default="new",
        tracking=True,
        copy=False,
        index=True,
        group_expand="_read_group_state",
    )
    referee_company_name = fields.Char(
        string="Referred Company",
        help="Company name as given by the sponsor.",
    )
    referee_contact_name = fields.Char(
        string="Contact Name", help="Person to call, as given by the sponsor."
    )
    referee_email = fields.Char(string="Email")
    referee_phone = fields.Char(string="Phone")
    referee_vat = fields.Char(
        string="Tax ID",
        help="Used with the company name to find the company among existing contacts.",
    )
    note = fields.Html(
        help="Context given by the sponsor.", groups="sales_team.group_sale_salesman"
    )
    date_referral = fields.Datetime(
        string="Referred On", required=True, default=fields.Datetime.now, copy=False
    )
    date_in_progress = fields.Datetime(string="Contacted On", copy=False)
    date_won = fields.Datetime(string="Won On", copy=False)
    date_rewarded = fields.Datetime(string="Rewarded On", copy=False)
    date_closed = fields.Datetime(string="Closed On", copy=False)
    lost_reason_id = fields.Many2one(
        "referral.lost.reason",
        index="btree_not_null",
        tracking=True,
        copy=False,
        check_company=True,
        ondelete="restrict",
    )
    sponsor_id = fields.Many2one(
        "res.partner",
        required=True,
        index=True,
        tracking=True,
        check_company=True,
        help="Customer who referred the company (its commercial entity).",
    )
    referee_id = fields.Many2one(
        "res.partner",
        required=True,
        index=True,
        tracking=True,
        check_company=True,
        help="Referred company (its commercial entity). Found among existing "
        "contacts from the details given, or created.",
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    program_id = fields.Many2one(
        "referral.program",
        compute="_compute_program_id",
        store=True,
        precompute=True,
        readonly=False,
        required=True,
        check_company=True,
        ondelete="restrict",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        compute="_compute_user_id",
        store=True,
        precompute=True,
        readonly=False,
        index=True,
        tracking=True,
        domain="[('share', '=', False), ('company_ids', 'in', company_id)]",
        help="By default the salesperson of the sponsor's account.",
    )
    first_order_id = fields.Many2one(
        "sale.order",
        readonly=True,
        copy=False,
        check_company=True,
        groups="sales_team.group_sale_salesman",
        help="First confirmed sales order of the referee.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    first_order_currency_id = fields.Many2one(
        related="first_order_id.currency_id", string="First Order Currency"
    )
    first_order_amount = fields.Monetary(
        related="first_order_id.amount_untaxed",
        string="First Order Untaxed Amount",
        currency_field="first_order_currency_id",
        groups="sales_team.group_sale_salesman",
    )
    transaction_ids = fields.One2many(
        "referral.wallet.transaction",
        "referral_id",
        string="Reward Transactions",
        readonly=True,
    )
    reward_amount = fields.Monetary(
        compute="_compute_reward_amount",
        currency_field="currency_id",
        help="Credit the sponsor earned for this referral, net of reversals "
        "(pending rewards included).",
    )

    _sql_constraints = [
        (
            "single_active_referral",
            "EXCLUDE USING btree (referee_id WITH =, company_id WITH =) "
            "WHERE (state IN ({}))".format(
                ", ".join(f"'{state}'" for state in ACTIVE_STATES)
            ),
            "This company has already been referred: open the existing referral "
            "instead of creating a new one.",
        ),
    ]

    @api.model
    def _read_group_state(self, states, domain):
        """Kanban columns in the order of the states: the road to a reward
        always, even empty, the closed states when they hold referrals."""
        return [
            state
            for state in self._fields["state"].get_values(self.env)
            if state in KANBAN_STATES or state in states
        ]

    @api.depends("company_id")
    def _compute_program_id(self):
        Program = self.env["referral.program"]
        for referral in self:
            if referral.program_id.company_id != referral.company_id:
                referral.program_id = Program._get_company_program(referral.company_id)

    @api.depends("transaction_ids.signed_amount", "transaction_ids.state")
    def _compute_reward_amount(self):
        totals = dict(
            self.env["referral.wallet.transaction"]
            .sudo()
            ._read_group(
                [
                    ("referral_id", "in", self.ids),
                    ("state", "in", ("posted", "pending")),
                    ("transaction_type", "in", ("credit", "reversal")),
                ],
                ["referral_id"],
                ["signed_amount:sum"],
            )
        )
        for referral in self:
            referral.reward_amount = totals.get(referral, 0.0)

    @api.depends("sponsor_id")
    def _compute_user_id(self):
        for referral in self:
            sponsor = referral.sponsor_id
            referral.user_id = (
                sponsor.commercial_partner_id.user_id
                or sponsor.user_id
                or referral.user_id
                or (not self.env.user.share and self.env.user)
            )

    @api.constrains("sponsor_id", "referee_id")
    def _check_referee_differs_from_sponsor(self):
        """A customer refers neither itself nor one of its own sponsors.

        Constraints run in name order: this one comes first on purpose."""
        for referral in self:
            sponsor = referral.sponsor_id.commercial_partner_id
            referee = referral.referee_id.commercial_partner_id
            if sponsor == referee:
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s cannot refer itself: the sponsor and the "
                        "referred company are the same customer.",
                        sponsor=sponsor.display_name,
                    )
                )
            partner, seen = sponsor.sponsor_id, sponsor
            while partner and partner not in seen:
                if partner == referee:
                    raise ValidationError(
                        self.env._(
                            "%(referee)s already sponsors %(sponsor)s, directly "
                            "or through other customers: a customer cannot "
                            "refer its own sponsor.",
                            referee=referee.display_name,
                            sponsor=sponsor.display_name,
                        )
                    )
                seen |= partner
                partner = partner.sponsor_id

    @api.model
    def _check_single_active_referral(self, pairs, exclude_ids=()):
        """Refuse a second active referral of a referee in a company;
        ``pairs`` are the (referee id, company id) about to be active. The
        exclusion constraint holds it against concurrent transactions; this
        check, run before writing, gives the message."""
        pairs = [pair for pair in pairs if pair[0]]
        if not pairs:
            return
        seen = set()
        duplicates = {pair for pair in pairs if pair in seen or seen.add(pair)}
        # Referrals of other salespeople count too, whatever the user sees.
        existing = self.sudo().search(
            [
                ("referee_id", "in", [pair[0] for pair in pairs]),
                ("company_id", "in", [pair[1] for pair in pairs]),
                ("state", "in", ACTIVE_STATES),
                ("id", "not in", list(exclude_ids)),
            ]
        )
        duplicates |= {(r.referee_id.id, r.company_id.id) for r in existing} & set(
            pairs
        )
        if duplicates:
            referee_id, company_id = sorted(duplicates)[0]
            raise ValidationError(
                self.env._(
                    "%(referee)s has already been referred to %(company)s. "
                    "Open the existing referral instead of creating a new "
                    "one.",
                    referee=self.env["res.partner"].browse(referee_id).display_name,
                    company=self.env["res.company"].browse(company_id).display_name,
                )
            )

    @api.constrains("sponsor_id", "program_id")
    def _check_sponsor_eligible(self):
        for referral in self:
            sponsor = referral.sponsor_id.commercial_partner_id
            if not sponsor.active or not referral.sponsor_id.active:
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s is archived and cannot sponsor.",
                        sponsor=referral.sponsor_id.display_name,
                    )
                )
            if not referral.program_id._is_sponsor_eligible(sponsor):
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s may not sponsor in the program "
                        "%(program)s: see who may sponsor in the program's "
                        "settings.",
                        sponsor=sponsor.display_name,
                        program=referral.program_id.display_name,
                    )
                )

    @api.constrains("referee_id", "program_id")
    def _check_referee_not_customer(self):
        for referral in self.filtered(
            lambda r: not r.program_id.allow_customer_referee
        ):
            orders = (
                self.env["sale.order"]
                .sudo()
                .search_count(
                    [
                        ("partner_id", "child_of", referral.referee_id.ids),
                        ("company_id", "=", referral.company_id.id),
                        ("state", "=", "sale"),
                        ("id", "!=", referral.first_order_id.id),
                    ],
                    limit=1,
                )
            )
            if orders:
                raise ValidationError(
                    self.env._(
                        "%(referee)s is already a customer: the program "
                        "%(program)s only rewards new business.",
                        referee=referral.referee_id.display_name,
                        program=referral.program_id.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        Partner = self.env["res.partner"]
        for vals in vals_list:
            # Odoo's import (base_import) tells its rows by this context key.
            if self.env.context.get("import_file"):
                vals.setdefault("source", "import")
            if vals.get("sponsor_id"):
                sponsor = Partner.browse(vals["sponsor_id"])
                vals["sponsor_id"] = sponsor.commercial_partner_id.id
            if vals.get("referee_id"):
                referee = Partner.browse(vals["referee_id"])
                vals["referee_id"] = referee.commercial_partner_id.id
            if vals.get("name", self.env._("New")) == self.env._("New"):
                company = self.env["res.company"].browse(
                    vals.get("company_id", self.env.company.id)
                )
                vals["name"] = self.env["ir.sequence"].with_company(
                    company
                ).next_by_code("referral.referral") or self.env._("New")
        self._check_company_programs(vals_list)
        # The referee contacts created from raw details go away with a
        # refused referral, even when the caller catches the error.
        with self.env.cr.savepoint():
            self._resolve_referees(vals_list)
            self._check_single_active_referral(
                [
                    (
                        vals.get("referee_id"),
                        vals.get("company_id") or self.env.company.id,
                    )
                    for vals in vals_list
                    if vals.get("state", "new") in ACTIVE_STATES
                ]
            )
            referrals = super().create(vals_list)
        referrals._assign_referee_salesperson()
        # The salesperson recording a referral may not be the one it is
        # routed to: schedule the plan's activities whatever their own rights.
        # A referral born from an order is already won: nobody to chase.
        referrals.filtered(
            lambda r: not r.first_order_id
        ).sudo()._launch_activity_plan()
        return referrals

    @api.model
    def _check_company_programs(self, vals_list):
        companies = self.env["res.company"].browse(
            {vals.get("company_id") or self.env.company.id for vals in vals_list}
        )
        Program = self.env["referral.program"].sudo()
        for company in companies:
            if not any(v.get("program_id") for v in vals_list) and not (
                Program._get_company_program(company)
            ):
                raise UserError(
                    self.env._(
                        "%(company)s has no active referral program: create "
                        "one in Sales > Configuration > Referral Programs.",
                        company=company.display_name,
                    )
                )

    def write(self, vals):
        for field in ("sponsor_id", "referee_id"):
            if vals.get(field):
                partner = self.env["res.partner"].browse(vals[field])
                vals[field] = partner.commercial_partner_id.id
        self._check_closed_fields_unchanged(vals)
        if {"state", "referee_id", "company_id"} & set(vals):
            self._check_single_active_referral(
                [
                    (
                        vals.get("referee_id") or r.referee_id.id,
                        vals.get("company_id") or r.company_id.id,
                    )
                    for r in self
                    if vals.get("state", r.state) in ACTIVE_STATES
                ],
                exclude_ids=self.ids,
            )
        if vals.get("state") in STATE_DATE_FIELDS:
            date_field = STATE_DATE_FIELDS[vals["state"]]
            vals.setdefault(date_field, fields.Datetime.now())
        closing = self.browse()
        if vals.get("state") in CLOSED_STATES:
            closing = self.filtered(lambda r: r.state != vals["state"])
        res = super().write(vals)
        # sudo: closing a referral cancels the calls planned for it, whoever
        # they are assigned to (the order confirmed by a colleague wins it).
        closing.sudo().activity_ids.unlink()
        return res

    def _check_closed_fields_unchanged(self, vals):
        """Won and rewarded referrals change sponsor, referee, program, first
        order and state only through their actions (which pass the
        ``referral_action`` context key)."""
        locked = set(vals) & LOCKED_WHEN_WON
        if not locked or self.env.context.get("referral_action"):
            return
        won = self.filtered(lambda r: r.state in ("won", "rewarded"))
        changed = won.filtered(
            lambda r: any(r._value_differs(fname, vals[fname]) for fname in locked)
        )
        if changed:
            raise UserError(
                self.env._(
                    "%(referrals)s are won: their sponsor, referred company, "
                    "program, first order and status change only through their "
                    "buttons (cancelling the first order reopens them).",
                    referrals=", ".join(changed.mapped("name")),
                )
            )

    def _value_differs(self, fname, value):
        self.ensure_one()
        current = self[fname]
        if self._fields[fname].type == "many2one":
            current = current.id
            value = value.id if isinstance(value, models.BaseModel) else value
        return (current or False) != (value or False)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_won(self):
        if any(referral.state in ("won", "rewarded") for referral in self):
            raise UserError(
                self.env._(
                    "A won or rewarded referral cannot be deleted: mark it as "
                    "lost or rejected instead."
                )
            )

    def action_start(self):
        """The sponsor was called: the referral is in progress and the
        sponsor call of its plan is done."""
        started = self.filtered(lambda r: r.state == "new")
        started.write({"state": "in_progress"})
        sponsor_call = self.env.ref(
            "sale_referral_lifecycle.mail_activity_type_referral_call_sponsor",
            raise_if_not_found=False,
        )
        # sudo: the call may be assigned to the colleague the referral was
        # routed to; whoever marks the sponsor contacted closes it.
        calls = started.sudo().activity_ids.filtered(
            lambda a: a.activity_type_id == sponsor_call
        )
        if calls:
            calls.action_feedback(feedback=self.env._("Sponsor contacted."))

    def action_open_lost_wizard(self):
        """Mark as Lost: ask the reason first."""
        self._check_closable()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_lost_wizard"
        )
        action["context"] = {"default_referral_ids": self.ids}
        return action

    def action_mark_lost(self, **additional_values):
        """Close as lost; ``additional_values``: e.g. ``lost_reason_id``
        (the Mark as Lost button asks it in ``referral.lost.wizard``)."""
        self._close("lost", **additional_values)

    def action_reject(self):
        self._close("rejected")

    def action_reset(self):
        """Reopen lost or rejected referrals and plan their calls again."""
        reopened = self.filtered(lambda r: r.state in ("lost", "rejected"))
        reopened.write({"state": "new", "date_closed": False, "lost_reason_id": False})
        # As on creation: planned whatever the rights of who reopens.
        reopened.sudo()._launch_activity_plan()

    def action_view_first_order(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": "sale.order",
            "res_id": self.first_order_id.id,
            "views": [(False, "form")],
        }

    def _close(self, state, **additional_values):
        """Close open referrals as ``state`` (lost or rejected); ``write``
        drops their pending activities: nobody has to call anymore."""
        self._check_closable()
        self.write(dict(additional_values, state=state))

    def _check_closable(self):
        if any(referral.state not in OPEN_STATES for referral in self):
            raise UserError(
                self.env._("Only new or in-progress referrals can be closed.")
            )

    # ------------------------------------------------------------------
    # Referee matching
    # ------------------------------------------------------------------

    @api.model
    def _resolve_referees(self, vals_list):
        """Set ``referee_id`` of the values that only carry raw details:
        an existing contact when one matches, else a new one."""
        for vals in vals_list:
            if vals.get("referee_id"):
                continue
            referee = self._find_referee(vals)
            if not referee:
                referee = self._create_referee(vals)
            vals["referee_id"] = referee.commercial_partner_id.id

    @api.model
    def _find_referee(self, vals):
        """Return the existing contact the raw details designate: same
        normalised email first, then same company name and tax ID."""
        Partner = self.env["res.partner"]
        email = email_normalize(vals.get("referee_email") or "")
        if email:
            partner = Partner.search([("email_normalized", "=", email)], limit=1)
            if partner:
                return partner
        company_name = (vals.get("referee_company_name") or "").strip()
        vat = (vals.get("referee_vat") or "").replace(" ", "").upper()
        if company_name and vat:
            return Partner.search(
                [
                    ("is_company", "=", True),
                    ("name", "=ilike", company_name),
                    ("vat", "=ilike", vat),
                ],
                limit=1,
            )
        return Partner

    @api.model
    def _create_referee(self, vals):
        company_name = (vals.get("referee_company_name") or "").strip()
        contact_name = (vals.get("referee_contact_name") or "").strip()
        if not company_name and not contact_name:
            raise ValidationError(
                self.env._(
                    "Give at least the name of the referred company or of "
                    "the person to contact."
                )
            )
        Partner = self.env["res.partner"]
        values = self._prepare_referee_partner_values(vals)
        if not company_name:
            return Partner.create(dict(values, name=contact_name))
        if not contact_name:
            return Partner.create(dict(values, name=company_name, is_company=True))
        company = Partner.create(
            dict(values, name=company_name, is_company=True, email=False, phone=False)
        )
        Partner.create(dict(values, name=contact_name, parent_id=company.id, vat=False))
        return company

    @api.model
    def _prepare_referee_partner_values(self, vals):
        """Values of the contact created for a referee; ``name`` is set by
        the caller."""
        return {
            "email": vals.get("referee_email"),
            "phone": vals.get("referee_phone"),
            "vat": vals.get("referee_vat"),
            "user_id": vals.get("user_id"),
        }

    def _assign_referee_salesperson(self):
        """Route the referees (and their contact persons) to the sponsor's
        salesperson, when they have none, and record the referral as their
        first contact when it is. Done as superuser: routing is part of
        recording a referral, whoever records it."""
        for user, referrals in self.filtered("user_id").grouped("user_id").items():
            referees = referrals.sudo().referee_id
            (referees | referees.child_ids).filtered(lambda p: not p.user_id).write(
                {"user_id": user.id}
            )
        referees = self.sudo().referee_id
        source = self.env.ref("sale_referral_lifecycle.utm_source_referral")
        first_contacts = referees.filtered(lambda p: not p.first_contact_date)
        if first_contacts:
            first_contacts.write(
                {
                    "first_contact_date": fields.Date.context_today(self),
                    "first_contact_source_id": source.id,
                }
            )
        # A quotation sent before the referral (a code typed on it) dated the
        # first contact without knowing its channel: the referral is it.
        (referees - first_contacts).filtered(
            lambda p: not p.first_contact_source_id
        ).write({"first_contact_source_id": source.id})

    # ------------------------------------------------------------------
    # Activities
    # ------------------------------------------------------------------

    def _launch_activity_plan(self):
        """Schedule the program's activity plan on each referral, deadlines
        counted in working days of the company's calendar."""
        model_id = self.env["ir.model"]._get_id(self._name)
        vals_list = []
        for referral in self.filtered("program_id.activity_plan_id"):
            plan = referral.program_id.activity_plan_id
            responsibles = self.env["res.users"]
            for template in plan.template_ids:
                responsible = template._determine_responsible(
                    referral.user_id, referral
                )["responsible"]
                responsible = responsible or referral.user_id or referral.create_uid
                responsibles |= responsible
                vals_list.append(
                    dict(
                        referral._prepare_plan_activity_values(template, responsible),
                        res_model_id=model_id,
                    )
                )
            # Followed first: creating several activities of one user on one
            # record in a batch would subscribe that user twice.
            referral.message_subscribe(partner_ids=responsibles.partner_id.ids)
        return self.env["mail.activity"].create(vals_list)

    def _prepare_plan_activity_values(self, template, responsible):
        """Values of the activity ``template`` plans for ``responsible``. An
        empty summary or note is the activity type's, translated in the
        responsible's language (plan templates are not translatable)."""
        self.ensure_one()
        activity_type = template.activity_type_id.with_context(
            lang=responsible.lang or self.env.lang
        )
        return {
            "res_id": self.id,
            "activity_type_id": activity_type.id,
            "summary": template.summary or activity_type.summary,
            "note": template.note or activity_type.default_note,
            "user_id": responsible.id,
            "date_deadline": self._get_plan_deadline(template),
            "automated": True,
        }

    def _get_plan_deadline(self, template):
        """Deadline of ``template``: a delay in days after the plan date
        counts the company's working days from tomorrow."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        calendar = self.company_id.resource_calendar_id
        if (
            calendar
            and template.delay_unit == "days"
            and template.delay_from == "after_plan_date"
            and template.delay_count > 0
        ):
            # Tomorrow at midnight where the team works: a naive datetime
            # would be read as UTC and shift the days far from Europe.
            tz = pytz.timezone(calendar.tz or "UTC")
            start = tz.localize(datetime.combine(today + timedelta(days=1), time.min))
            deadline = calendar.plan_days(
                template.delay_count, start, compute_leaves=True
            )
            if deadline:
                return deadline.astimezone(tz).date()
        return template._get_date_deadline(today)

    # ------------------------------------------------------------------
    # Sales
    # ------------------------------------------------------------------

    def _action_won(self, orders):
        """Mark the referrals won by the first confirmed order of their
        referee among ``orders``."""
        order_by_referee = {}
        for order in orders.sorted("date_order"):
            key = (order.partner_id.commercial_partner_id, order.company_id)
            order_by_referee.setdefault(key, order)
        for referral in self:
            order = order_by_referee.get((referral.referee_id, referral.company_id))
            if order:
                referral.write({"state": "won", "first_order_id": order.id})
                order.referral_id = referral
        self.filtered(
            lambda r: r.state == "won"
            and r.program_id.reward_trigger == "order_confirmed"
        )._grant_rewards()

    # ------------------------------------------------------------------
    # Sponsor rewards
    # ------------------------------------------------------------------

    def _grant_rewards(self):
        """Credit the sponsors of these won referrals, once per referral:
        posted, or pending with an activity for the approvers."""
        # sudo: the reward is earned whoever confirms the order or registers
        # the payment; wallets are not writable through access rights.
        referrals = self.sudo().filtered(
            lambda r: r.state == "won"
            and r.first_order_id
            and not r.transaction_ids._get_live_rewards()
        )
        if not referrals:
            return self.env["referral.wallet.transaction"]
        wallets = self.env["referral.wallet"].browse()
        for company in referrals.company_id:
            wallets |= self.env["referral.wallet"]._get_or_create(
                referrals.filtered(lambda r, c=company: r.company_id == c).sponsor_id,
                company,
            )
        wallet_by_key = {(w.partner_id, w.company_id): w.sudo() for w in wallets}
        earned = self._read_earned_this_year(wallets)
        today = fields.Date.context_today(self)
        vals_list = []
        for referral in referrals:
            wallet = wallet_by_key[(referral.sponsor_id, referral.company_id)]
            program = referral.program_id
            amount = program._compute_reward_amount(
                referral.first_order_id, earned[wallet.id]
            )
            if referral.currency_id.is_zero(amount):
                referral.message_post(
                    body=self.env._(
                        "No credit earned for this referral: the reward is zero "
                        "or the sponsor reached the program's yearly cap."
                    )
                )
                continue
            earned[wallet.id] += amount
            vals_list.append(referral._prepare_reward_values(wallet, amount, today))
        transactions = self.env["referral.wallet.transaction"].sudo().create(vals_list)
        posted = transactions.filtered(lambda t: t.state == "posted")
        posted.referral_id._on_reward_posted(posted)
        (transactions - posted).referral_id._schedule_reward_approval()
        return transactions

    def _prepare_reward_values(self, wallet, amount, date):
        self.ensure_one()
        program = self.program_id
        return {
            "wallet_id": wallet.id,
            "transaction_type": "credit",
            "amount": amount,
            "remaining_amount": amount,
            "state": "pending" if program.approval_required else "posted",
            "date": date,
            "expiry_date": program._get_credit_expiry_date(date),
            "referral_id": self.id,
            "name": self.env._(
                "Reward for referring %(referee)s (%(referral)s)",
                referee=self.referee_id.display_name,
                referral=self.name,
            ),
        }

    @api.model
    def _read_earned_this_year(self, wallets):
        """Credit earned (posted or pending) by ``wallets`` since January 1st,
        net of the rewards revoked since."""
        year_start = fields.Date.context_today(self).replace(month=1, day=1)
        earned = dict.fromkeys(wallets.ids, 0.0)
        Transaction = self.env["referral.wallet.transaction"].sudo()
        rewards = [
            ("wallet_id", "in", wallets.ids),
            ("transaction_type", "=", "credit"),
            ("state", "in", ("posted", "pending")),
            ("date", ">=", year_start),
        ]
        for wallet, amount in Transaction._read_group(
            rewards, ["wallet_id"], ["amount:sum"]
        ):
            earned[wallet.id] += amount
        for wallet, amount in Transaction._read_group(
            [
                ("transaction_type", "=", "reversal"),
                ("state", "=", "posted"),
            ]
            + [("reversed_transaction_id." + leaf[0], *leaf[1:]) for leaf in rewards],
            ["wallet_id"],
            ["amount:sum"],
        ):
            earned[wallet.id] -= amount
        return earned

    def _on_reward_posted(self, transactions):
        """Mark the referrals rewarded and tell their sponsors."""
        self.sudo().with_context(referral_action=True).write({"state": "rewarded"})
        template = self.env.ref(
            "sale_referral_lifecycle.mail_template_referral_reward",
            raise_if_not_found=False,
        )
        if template:
            for referral in self.sudo():
                referral.message_post_with_source(
                    template,
                    subtype_xmlid="mail.mt_comment",
                    message_type="comment",
                    # The mail queue sends it: not inside the confirmation.
                    force_send=False,
                )

    def _schedule_reward_approval(self):
        """One to-do per reward approver of the company on each referral."""
        group = self.env.ref(APPROVER_GROUP, raise_if_not_found=False)
        summary = self.env["referral.wallet.transaction"]._approval_summary()
        for referral in self.sudo():
            approvers = (
                group.users.filtered(
                    lambda u, r=referral: r.company_id in u.company_ids
                )
                if group
                else self.env["res.users"]
            )
            for approver in approvers:
                referral.activity_schedule(
                    "mail.mail_activity_data_todo",
                    summary=summary,
                    note=self.env._(
                        "Approve or cancel the pending reward of %(amount)s in "
                        "the Reward Transactions tab.",
                        amount=format_amount(
                            self.env, referral.reward_amount, referral.currency_id
                        ),
                    ),
                    user_id=approver.id,
                )

    def _revoke_rewards(self, reason):
        """The referee's first order was cancelled or refunded: cancel pending
        rewards, reverse what remains of posted ones, note on the chatter what
        the sponsor already spent, and reopen the referral."""
        referrals = self.sudo().filtered(lambda r: r.state in ("won", "rewarded"))
        for referral in referrals:
            rewards = referral.transaction_ids._get_live_rewards()
            rewards.filtered(lambda t: t.state == "pending").write(
                {"state": "cancelled"}
            )
            posted = rewards.filtered(lambda t: t.state == "posted")
            spent = sum(posted.mapped("remaining_amount"))
            spent = sum(posted.mapped("amount")) - spent
            posted._reverse()
            body = self.env._("The reward was revoked: %(reason)s", reason=reason)
            if not referral.currency_id.is_zero(spent):
                body = self.env._(
                    "%(body)s The sponsor had already spent or lost %(amount)s of "
                    "it: a manager decides whether to adjust its wallet.",
                    body=body,
                    amount=format_amount(self.env, spent, referral.currency_id),
                )
            referral.message_post(body=body)
        referrals.with_context(referral_action=True).write(
            {
                "state": "in_progress",
                "first_order_id": False,
                "date_won": False,
                "date_rewarded": False,
            }
        )
