# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A referral: a customer (the sponsor) refers a company (the referee) to
one of its suppliers' companies. The whole model, in sections: fields, the
creation steps in their order, the actions, then one section per concern
(rules, referee matching and routing, fraud review, import, activity plan,
rewards, emails, portal)."""

import contextvars
import re
from collections import defaultdict
from contextlib import contextmanager, nullcontext
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import SQL, email_normalize, format_amount, plaintext2html

from ..local_day import company_day
from ..wallet.referral_wallet_transaction import APPROVER_GROUP
from ..working_days import WorkingDays
from . import fraud_signals
from .action_flow import action_flow, in_action_flow
from .referral_code import normalize_referral_code
from .text_input import has_control_characters, single_line

# Within a creation: the (referee id, company id) pairs its caller found
# without an active referral a moment before (no second search), and the
# customers read once for the checks of sponsors and referees. Context
# variables of the Python call stack: an RPC call cannot set them.
_ACTIVE_CHECKED = contextvars.ContextVar(
    "sale_referral_lifecycle_active_checked", default=frozenset()
)
_CUSTOMERS_READ = contextvars.ContextVar(
    "sale_referral_lifecycle_customers_read", default=None
)


@contextmanager
def _context_value(variable, value):
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def _ilike_regex(pattern):
    """A compiled regular expression matching what ``ILIKE pattern`` does
    (without ``ESCAPE``: ``\\`` escapes the next character)."""
    parts, chars = [], iter(pattern)
    for char in chars:
        if char == "\\":
            parts.append(re.escape(next(chars, "\\")))
        elif char == "%":
            parts.append(".*")
        elif char == "_":
            parts.append(".")
        else:
            parts.append(re.escape(char))
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


# A referee has at most one referral in these states per company (a
# referral held for review counts: it blocks a
# second one); only the accepted ones bring the referee its welcome.
ACCEPTED_STATES = ("new", "in_progress", "won", "rewarded")
ACTIVE_STATES = (*ACCEPTED_STATES, "to_review")
OPEN_STATES = ("new", "in_progress")
# Fields a won or rewarded referral changes only through its actions.
LOCKED_WHEN_WON = {"sponsor_id", "referee_id", "program_id", "first_order_id", "state"}
# Fields set by the referral's actions and flows only (``action_flow``):
# never given to ``create`` nor written by ``write`` values, whoever the user.
ACTION_FIELDS = (
    "state",
    "date_in_progress",
    "date_won",
    "date_rewarded",
    "date_closed",
    "first_order_id",
    "review_reason",
    "review_decision",
    "referee_consent_date",
    "referee_consent_text",
    "reward_refused",
)
# Identity of a referral's parties: changing one on an open referral runs
# the fraud checks again.
FRAUD_CHECKED_FIELDS = {
    "sponsor_id",
    "referee_id",
    "referee_email",
    "referee_phone",
    "referee_vat",
}
# Longest raw details of a referee, whatever their source: they become the
# name, email and phone of a contact (indexed columns), so longer ones are
# refused before they reach the database.
REFEREE_DETAIL_SIZES = {
    "referee_company_name": 128,
    "referee_contact_name": 128,
    "referee_email": 254,
    "referee_phone": 64,
    "referee_vat": 32,
}
# Closed for the salesperson: nobody has to call anymore.
CLOSED_STATES = ("won", "rewarded", "lost", "rejected")
# Kanban columns shown even when empty.
KANBAN_STATES = ("new", "in_progress", "won", "rewarded")
# Days of working schedule read to plan a referral's calls: its plan's
# delays are days or weeks, not years.
PLAN_WINDOW_DAYS = 120
STATE_DATE_FIELDS = {
    "in_progress": "date_in_progress",
    "won": "date_won",
    "rewarded": "date_rewarded",
    "lost": "date_closed",
    "rejected": "date_closed",
}
# Who accepts or rejects the referrals held for review.
REVIEW_MANAGER_GROUP = "sales_team.group_sale_manager"
# The file the referrals' import dialog offers to download.
IMPORT_TEMPLATE = "/sale_referral_lifecycle/static/xls/referral_import_template.xlsx"
# Sources of the referrals the sponsor's side sends itself: its portal and
# its public link (an order's typed code makes referrals born won).
PORTAL_SOURCES = ("portal", "code")
# Fields of the portal and referral-link forms, in the form's order.
PORTAL_FORM_FIELDS = (
    "company_name",
    "contact_name",
    "email",
    "phone",
    "message",
)
# Longest value of each form field (the referee's details as the referral
# keeps them, and the message).
PORTAL_FORM_SIZES = {
    **{
        name: REFEREE_DETAIL_SIZES[f"referee_{name}"]
        for name in PORTAL_FORM_FIELDS
        if f"referee_{name}" in REFEREE_DETAIL_SIZES
    },
    "message": 2000,
}


class RetryRowByRow(Exception):
    """A batch of imported referrals was refused. ``load`` reports a refused
    batch's error on the batch's first row, then retries the rows one by one
    anyway: an exception that is no ``UserError`` skips that misplaced
    message and leaves each refused row to name itself."""


class ReferralReferral(models.Model):
    _name = "referral.referral"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _description = "Referral"
    _order = "date_referral desc, id desc"
    _check_company_auto = True
    # Portal users read their company's referrals and add notes to them.
    _mail_post_access = "read"

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
            ("to_review", "To Review"),
        ],
        string="Status",
        required=True,
        readonly=True,
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
    review_reason = fields.Text(
        readonly=True,
        copy=False,
        groups="sales_team.group_sale_salesman",
        help="Why this referral waits for a review by a Sales administrator.",
    )
    review_decision = fields.Selection(
        [("accepted", "Accepted"), ("rejected", "Rejected")],
        readonly=True,
        copy=False,
        tracking=True,
        groups="sales_team.group_sale_salesman",
        help="What a Sales administrator decided about this referral held "
        "for review. A referral rejected at review is reopened by a Sales "
        "administrator only.",
    )
    referee_consent_date = fields.Datetime(
        string="Contact Agreed On",
        readonly=True,
        copy=False,
        help="When the sponsor (or the visitor of its referral link) "
        "confirmed that the referred contact agreed to be contacted.",
    )
    referee_consent_text = fields.Char(
        string="Agreement Confirmed",
        readonly=True,
        copy=False,
        help="The wording of the agreement as it was confirmed.",
    )
    date_referral = fields.Datetime(
        string="Referred On", required=True, default=fields.Datetime.now, copy=False
    )
    date_in_progress = fields.Datetime(string="Contacted On", readonly=True, copy=False)
    date_won = fields.Datetime(string="Won On", readonly=True, copy=False)
    date_rewarded = fields.Datetime(string="Rewarded On", readonly=True, copy=False)
    date_closed = fields.Datetime(string="Closed On", readonly=True, copy=False)
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
    sponsor_ref = fields.Char(
        string="Sponsor Reference",
        compute="_compute_sponsor_ref",
        inverse="_inverse_sponsor_ref",
        help="The sponsor's referral code, email or name: how an imported "
        "file names the sponsor.",
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
    order_ids = fields.One2many(
        "sale.order",
        "referral_id",
        string="Orders",
        groups="sales_team.group_sale_salesman",
        help="Quotations and orders of the referred company made for this " "referral.",
    )
    quotation_count = fields.Integer(
        compute="_compute_quotation_count", groups="sales_team.group_sale_salesman"
    )
    reward_amount = fields.Monetary(
        compute="_compute_reward_amount",
        currency_field="currency_id",
        help="Credit the sponsor earned for this referral, net of reversals "
        "(pending rewards included).",
    )
    reward_refused = fields.Boolean(
        readonly=True,
        copy=False,
        tracking=True,
        help="A reward approver cancelled this referral's reward: it is not "
        "granted again.",
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
        # Read once per company, not per referral (an imported file).
        programs = {}
        for referral in self:
            company = referral.company_id
            if referral.program_id.company_id != company:
                if company not in programs:
                    programs[company] = Program._get_company_program(company)
                referral.program_id = programs[company]

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

    @api.depends("order_ids.state")
    def _compute_quotation_count(self):
        counts = dict(
            self.env["sale.order"]._read_group(
                [("referral_id", "in", self.ids), ("state", "in", ("draft", "sent"))],
                ["referral_id"],
                ["__count"],
            )
        )
        for referral in self:
            referral.quotation_count = counts.get(referral, 0)

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

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        """Record referrals, in this order: values completed (sponsor
        reference, commercial entities, reference), a program in each
        company, referees found or created, one active referral per referee,
        the records, routing to the sponsor's salesperson, the fraud review,
        then the activity plan of those not held for review. The values
        are checked first: no state nor what goes with it (``ACTION_FIELDS``,
        set by the flows only), referee details within bounds."""
        self._check_creation_values(vals_list)
        vals_list = self._prepare_referral_values_list(vals_list)
        self._check_company_programs(vals_list)
        # The referee contacts created from raw details go away with a
        # refused referral, even when the caller catches the error. Without
        # raw details (a code typed on an order) nothing needs undoing: no
        # savepoint, whose flush would run the pending tracking and commit
        # hooks inside the order confirmation.
        resolving = any(not vals.get("referee_id") for vals in vals_list)
        with self.env.cr.savepoint() if resolving else nullcontext():
            created = self._resolve_referees(vals_list)
            checked = _ACTIVE_CHECKED.get()
            self._check_single_active_referral(
                [
                    pair
                    for vals in vals_list
                    if vals.get("state", "new") in ACTIVE_STATES
                    and (
                        pair := (
                            vals.get("referee_id"),
                            vals.get("company_id") or self.env.company.id,
                        )
                    )
                    not in checked
                ]
            )
            with _context_value(_CUSTOMERS_READ, {}):
                referrals = super().create(vals_list)
        referrals._assign_referee_salesperson(created)
        flagged = referrals._flag_suspicious()
        # The salesperson recording a referral may not be the one it is
        # routed to: schedule the plan's activities whatever their own rights.
        # A referral born from an order is already won: nobody to chase.
        (referrals - flagged).filtered(
            lambda r: not r.first_order_id
        ).sudo()._launch_activity_plan()
        return referrals

    @api.model
    def _flow_create(self, vals_list, active_checked=()):
        """Create referrals whose values may carry ``ACTION_FIELDS``: for
        the flows that decide them (a referral born won from its first
        order, the consent recorded by the portal), after their own checks.
        ``active_checked``: the (referee id, company id) pairs the caller
        has just searched without an active referral (not searched again;
        the exclusion constraint still holds against concurrent ones)."""
        with action_flow(), _context_value(_ACTIVE_CHECKED, frozenset(active_checked)):
            return self.create(vals_list)

    def _flow_write(self, vals):
        """Write ``vals``, ``ACTION_FIELDS`` included: for the actions and
        flows, after their own check of who may run them (access rights and
        record rules still apply to the environment's user)."""
        with action_flow():
            return self.write(vals)

    @api.model
    def _check_creation_values(self, vals_list):
        """Refuse values a referral cannot be created with: a state other
        than New, or what goes with the state (dates, first order, review,
        consent), outside the flows that set them; raw referee details
        beyond their bounds or with control characters. Checked before
        anything is written or read."""
        if not in_action_flow():
            # Defaults count as given: the caller sets them too (default_*
            # context keys, user defaults).
            defaults = self.default_get(list(ACTION_FIELDS))
            given = {
                fname
                for vals in vals_list
                for fname in ACTION_FIELDS
                if (value := vals.get(fname, defaults.get(fname)))
                and (fname, value) != ("state", "new")
            }
            if given:
                raise UserError(
                    self.env._(
                        "A referral starts as New: %(fields)s are set by its "
                        "buttons and by the referee's orders, never given when "
                        "it is created. Remove them (from an imported file: "
                        "remove their columns).",
                        fields=self._describe_fields(given),
                    )
                )
        for vals in vals_list:
            self._check_referee_details(vals)

    @api.model
    def _check_referee_details(self, vals):
        """Refuse raw referee details of ``vals`` longer than their bound or
        holding control characters (a NUL would fail in the database)."""
        for fname, size in REFEREE_DETAIL_SIZES.items():
            value = vals.get(fname)
            if not value or not isinstance(value, str):
                continue
            label = self._fields[fname]._description_string(self.env)
            if len(value) > size:
                raise ValidationError(
                    self.env._(
                        "%(field)s is too long: keep it under %(size)s " "characters.",
                        field=label,
                        size=size,
                    )
                )
            if has_control_characters(value):
                raise ValidationError(
                    self.env._(
                        "%(field)s holds characters that are not allowed "
                        "(line breaks or control characters): type it on one "
                        "line.",
                        field=label,
                    )
                )

    @api.model
    def _describe_fields(self, fnames):
        """The labels of ``fnames``, in the model's field order."""
        return ", ".join(
            field._description_string(self.env)
            for fname, field in self._fields.items()
            if fname in fnames
        )

    @api.model
    def _prepare_referral_values_list(self, vals_list):
        """Copies of ``vals_list`` completed for creation: the sponsor named
        by its reference (import), sponsor and referee as commercial
        entities, the source of an imported row, the reference from the
        company's sequence."""
        vals_list = [dict(vals) for vals in vals_list]
        importing = self.env.context.get("import_file")
        sponsors = self._resolve_sponsor_refs(
            [vals.get("sponsor_ref") for vals in vals_list]
        )
        Partner = self.env["res.partner"]
        unnamed = {}
        for vals in vals_list:
            ref = (vals.pop("sponsor_ref", None) or "").strip()
            if ref:
                vals["sponsor_id"] = sponsors[ref].id
            elif not vals.get("sponsor_id") and importing:
                raise ValidationError(
                    self.env._(
                        "The sponsor is missing: give its referral code, email "
                        "or name in the column Sponsor Reference."
                    )
                )
            # Odoo's import (base_import) tells its rows by this context key.
            if importing:
                vals.setdefault("source", "import")
            for field in ("sponsor_id", "referee_id"):
                if vals.get(field):
                    partner = Partner.browse(vals[field])
                    vals[field] = partner.commercial_partner_id.id
            if vals.get("name", self.env._("New")) == self.env._("New"):
                company = self.env["res.company"].browse(
                    vals.get("company_id", self.env.company.id)
                )
                unnamed.setdefault(company, []).append(vals)
        for company, company_vals in unnamed.items():
            names = self._next_references(company, len(company_vals))
            for vals, name in zip(company_vals, names, strict=True):
                vals["name"] = name or self.env._("New")
        return vals_list

    @api.model
    def _next_references(self, company, count):
        """``count`` references drawn from the sequence
        ``next_by_code("referral.referral")`` draws from in ``company``, in
        one query: the sequence found with its numbers drawn when it is a
        plain PostgreSQL sequence (no date ranges), formatted by the
        sequence itself; ``[False] * count`` without a sequence."""
        Sequence = self.env["ir.sequence"].with_company(company)
        Sequence.browse().check_access("read")
        rows = self.env.execute_query(
            SQL(
                """
                WITH seq AS (
                    SELECT id, implementation, use_date_range, prefix, suffix,
                           padding
                      FROM ir_sequence
                     WHERE code = 'referral.referral' AND active
                       AND (company_id = %(company)s OR company_id IS NULL)
                     ORDER BY company_id NULLS LAST, id
                     LIMIT 1
                )
                SELECT seq.*,
                       CASE WHEN implementation = 'standard'
                                 AND NOT COALESCE(use_date_range, FALSE)
                            THEN ARRAY(
                                SELECT nextval(
                                    ('ir_sequence_'
                                     || CASE WHEN seq.id < 1000
                                             THEN lpad(seq.id::text, 3, '0')
                                             ELSE seq.id::text END)::regclass
                                ) AS number
                                  FROM generate_series(1, %(count)s)
                                 ORDER BY number)
                       END
                  FROM seq
                """,
                company=company.id,
                count=count,
            )
        )
        if not rows:
            return [False] * count
        seq_id, implementation, use_date_range, prefix, suffix, padding, numbers = rows[
            0
        ]
        sequence = Sequence.browse(seq_id)
        if numbers is None:
            return [sequence._next() for _index in range(count)]
        # What get_next_char() reads of the sequence, as read above.
        for fname, value in (
            ("implementation", implementation),
            ("use_date_range", use_date_range),
            ("prefix", prefix),
            ("suffix", suffix),
            ("padding", padding),
        ):
            sequence._cache[fname] = value
        return [sequence.get_next_char(number) for number in numbers]

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
        self._check_action_fields_unchanged(vals)
        self._check_referee_details(vals)
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
        if FRAUD_CHECKED_FIELDS & set(vals) and not in_action_flow():
            # A party changed after the creation's checks: checked again.
            self._flag_suspicious(burst=False)
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_except_won(self):
        if any(referral.state in ("won", "rewarded") for referral in self):
            raise UserError(
                self.env._(
                    "A won or rewarded referral cannot be deleted: mark it as "
                    "lost or rejected instead."
                )
            )

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_start(self):
        """The sponsor was called: the referral is in progress and the
        sponsor call of its plan is done."""
        started = self.filtered(lambda r: r.state == "new")
        started._flow_write({"state": "in_progress"})
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

    def action_mark_lost(self, lost_reason_id=False):
        """Close as lost, with a reason (the Mark as Lost button asks it in
        ``referral.lost.wizard``)."""
        self._close("lost", lost_reason_id=lost_reason_id)

    def action_reject(self):
        self._close("rejected")

    def action_reset(self):
        """Reopen lost or rejected referrals and plan their calls again. A
        referral rejected at review is reopened by a Sales administrator
        only: reopening it accepts it."""
        reopened = self.filtered(lambda r: r.state in ("lost", "rejected"))
        rejected_at_review = reopened.sudo().filtered(
            lambda r: r.state == "rejected" and r.review_decision == "rejected"
        )
        if rejected_at_review and not self.env.user.has_group(REVIEW_MANAGER_GROUP):
            raise UserError(
                self.env._(
                    "%(referrals)s were rejected at review: only Sales "
                    "administrators reopen them.",
                    referrals=", ".join(rejected_at_review.mapped("name")),
                )
            )
        reopened._flow_write(
            {"state": "new", "date_closed": False, "lost_reason_id": False}
        )
        if rejected_at_review:
            rejected_at_review._flow_write({"review_decision": "accepted"})
            for referral in rejected_at_review.with_env(self.env):
                referral.message_post(
                    body=self.env._(
                        "Review: referral reopened and accepted by %(user)s.",
                        user=self.env.user.name,
                    )
                )
        # As on creation: planned whatever the rights of who reopens.
        reopened.sudo()._launch_activity_plan()

    def action_new_quotation(self):
        """A quotation for the referred company, linked to this referral at
        once, with its salesperson and the Referral source (as an
        opportunity's New Quotation does)."""
        self.ensure_one()
        if self.state not in OPEN_STATES:
            raise UserError(
                self.env._(
                    "Quotations are made from new or in-progress referrals; "
                    "%(referral)s is %(state)s.",
                    referral=self.name,
                    state=dict(self._fields["state"]._description_selection(self.env))[
                        self.state
                    ],
                )
            )
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("New Quotation"),
            "res_model": "sale.order",
            "views": [(False, "form")],
            "context": self._prepare_quotation_context(),
        }

    def action_view_quotations(self):
        """The open quotations of this referral (the form when one)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale.action_quotations_with_onboarding"
        )
        quotations = self.env["sale.order"].search(
            [("referral_id", "=", self.id), ("state", "in", ("draft", "sent"))]
        )
        action["domain"] = [("id", "in", quotations.ids)]
        action["context"] = self._prepare_quotation_context()
        if len(quotations) == 1:
            action["views"] = [(False, "form")]
            action["res_id"] = quotations.id
        return action

    def _prepare_quotation_context(self):
        """Values of a new quotation of this referral. The referral is
        passed under its own key (``sale.order.default_get`` reads it): a
        ``default_referral_id`` would also land on the credit transactions
        created in that context."""
        self.ensure_one()
        source_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "sale_referral_lifecycle.utm_source_referral", raise_if_not_found=False
        )
        context = {
            "referral_quotation_referral_id": self.id,
            "default_partner_id": self.referee_id.id,
            "default_company_id": self.company_id.id,
            "default_origin": self.name,
        }
        if source_id:
            context["default_source_id"] = source_id
        if self.user_id:
            context["default_user_id"] = self.user_id.id
        return context

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
        self._flow_write(dict(additional_values, state=state))

    def _check_closable(self):
        if any(referral.state not in OPEN_STATES for referral in self):
            raise UserError(
                self.env._("Only new or in-progress referrals can be closed.")
            )

    # ------------------------------------------------------------------
    # Sales: won by the referee's first order
    # ------------------------------------------------------------------

    def _action_won(self, orders):
        """Mark the referrals won by the first confirmed order of their
        referee among ``orders``. The sponsor's reward of a program rewarding
        at confirmation is posted by the lifecycle queue's job within a
        minute (``sale.order._grant_referral_rewards``): not within the
        confirmation."""
        order_by_referee = {}
        for order in orders.sorted("date_order"):
            key = (order.partner_id.commercial_partner_id, order.company_id)
            order_by_referee.setdefault(key, order)
        for referral in self:
            order = order_by_referee.get((referral.referee_id, referral.company_id))
            if order and (referral.state, referral.first_order_id) != ("won", order):
                referral._flow_write({"state": "won", "first_order_id": order.id})
            if order and order.referral_id != referral:
                # Not a tracked field: no snapshot of the order's tracked
                # values to take (and read) for this write.
                order.with_context(mail_notrack=True).referral_id = referral
        # Rewarded at confirmation (by the lifecycle queue's job): the credit
        # email tells the news, else the job queues this one.
        self.filtered(
            lambda r: r.program_id.reward_trigger != "order_confirmed"
        )._queue_won_email()

    # ------------------------------------------------------------------
    # Rules: self-referral, sponsor cycles, one active referral, eligibility
    # ------------------------------------------------------------------

    # The rules a referral obeys: no self-referral nor sponsor cycle, one
    # active referral per referee and company, an eligible sponsor, new
    # business only, and won referrals changed through their actions only.

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
            if self._is_sponsor_cycle(sponsor, referee):
                raise ValidationError(
                    self.env._(
                        "%(referee)s already sponsors %(sponsor)s, directly "
                        "or through other customers: a customer cannot "
                        "refer its own sponsor.",
                        referee=referee.display_name,
                        sponsor=sponsor.display_name,
                    )
                )

    @api.model
    def _is_sponsor_cycle(self, sponsor, referee):
        """Whether ``referee`` sponsors ``sponsor``, directly or through other
        customers (commercial entities): referring it would close a cycle."""
        partner, seen = sponsor.commercial_partner_id.sponsor_id, sponsor
        while partner and partner not in seen:
            if partner == referee.commercial_partner_id:
                return True
            seen |= partner
            partner = partner.sponsor_id
        return False

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
        # One query per program for all the referrals (an imported file).
        eligible = {
            program: program._filter_eligible_sponsors(
                referrals.sponsor_id.commercial_partner_id,
                customers=self._read_parties_customers(program.company_id)
                if program.sponsor_policy == "customer"
                else None,
            )
            for program, referrals in self.grouped("program_id").items()
        }
        for referral in self:
            sponsor = referral.sponsor_id.commercial_partner_id
            if not sponsor.active or not referral.sponsor_id.active:
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s is archived and cannot sponsor.",
                        sponsor=referral.sponsor_id.display_name,
                    )
                )
            if sponsor not in eligible[referral.program_id]:
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
        referrals = self.filtered(lambda r: not r.program_id.allow_customer_referee)
        # Its first order, which won it, does not make it a customer. One
        # query per company and first order (an imported file: one).
        customers = {}
        for key, group in referrals.grouped(
            lambda r: (r.company_id, r.first_order_id)
        ).items():
            read = self._read_parties_customers(key[0])
            if read is None:
                customers[key] = group.referee_id._get_company_customers(
                    key[0], exclude_orders=key[1]
                )
            else:
                customers[key] = read[0] | group.referee_id.browse(
                    [
                        entity.id
                        for entity, held in read[1].items()
                        if held - set(key[1].ids)
                    ]
                )
        for referral in referrals:
            key = (referral.company_id, referral.first_order_id)
            if referral.referee_id.commercial_partner_id in customers[key]:
                raise ValidationError(
                    self.env._(
                        "%(referee)s is already a customer: the program "
                        "%(program)s only rewards new business.",
                        referee=referral.referee_id.display_name,
                        program=referral.program_id.display_name,
                    )
                )

    def _read_parties_customers(self, company):
        """Within a creation: the customers of ``company`` among the
        sponsors and referees of these referrals, their first orders set
        apart (``res.partner._read_company_customers``), read once for the
        checks of both; ``None`` outside a creation."""
        read = _CUSTOMERS_READ.get()
        if read is None:
            return None
        key = (company.id, tuple(self.ids))
        if key not in read:
            parties = self.sponsor_id | self.referee_id
            read[key] = parties._read_company_customers(company, self.first_order_id)
        return read[key]

    def _check_closed_fields_unchanged(self, vals):
        """Won and rewarded referrals change sponsor, referee, program, first
        order and state only through their actions (``action_flow``)."""
        locked = set(vals) & LOCKED_WHEN_WON
        if not locked or in_action_flow():
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

    def _check_action_fields_unchanged(self, vals):
        """Refuse a write of ``ACTION_FIELDS`` outside the actions and flows
        (``action_flow``), whoever the user, superuser included; values equal
        to the current ones pass (a client saving what it read)."""
        given = set(vals) & set(ACTION_FIELDS)
        if not given or in_action_flow():
            return
        # sudo: compared only; some of these fields are for salespeople.
        changed = {
            fname
            for fname in given
            for referral in self.sudo()
            if referral._value_differs(fname, vals[fname])
        }
        if changed:
            raise UserError(
                self.env._(
                    "%(fields)s of a referral change only through its buttons "
                    "(Mark as Contacted, Mark as Lost, Reject, Reopen, the "
                    "review's Accept and Reject) and the referee's orders.",
                    fields=self._describe_fields(changed),
                )
            )

    def _value_differs(self, fname, value):
        """Whether ``value``, as given to ``write``, differs from the
        record's value of ``fname`` (compared as the cache holds them)."""
        self.ensure_one()
        field = self._fields[fname]
        if isinstance(value, models.BaseModel):
            value = value.id
        current = field.convert_to_cache(self[fname], self, validate=False)
        return field.convert_to_cache(value, self, validate=False) != current

    # ------------------------------------------------------------------
    # Referee: matching, creation and routing
    # ------------------------------------------------------------------

    # The referred company: found among the contacts from the details the
    # sponsor gave, or created, then routed to the sponsor's salesperson.

    @api.model
    def _resolve_referees(self, vals_list):
        """Set ``referee_id`` of the values that only carry raw details:
        an existing contact when one matches, else a new one. The new ones
        are created in one batch; two values with the same details get the
        same new contact (and the single active referral check refuses the
        second). Return the contacts created (commercial entities)."""
        to_create = {}
        unresolved = [vals for vals in vals_list if not vals.get("referee_id")]
        for vals, referee in zip(
            unresolved, self._find_referees(unresolved), strict=True
        ):
            if referee:
                vals["referee_id"] = referee.commercial_partner_id.id
            else:
                to_create.setdefault(self._get_referee_key(vals), []).append(vals)
        referees = self._create_referees([group[0] for group in to_create.values()])
        for group, referee in zip(to_create.values(), referees, strict=True):
            for vals in group:
                vals["referee_id"] = referee.id
        return referees

    @api.model
    def _get_referee_key(self, vals):
        """Values matching no contact with the same key get the same new
        contact, as ``_find_referee`` would find it: the normalised email,
        else the company name with the Tax ID, else none alike."""
        email = email_normalize(vals.get("referee_email") or "")
        if email:
            return ("email", email)
        company_name = (vals.get("referee_company_name") or "").strip().lower()
        vat = (vals.get("referee_vat") or "").replace(" ", "").upper()
        if company_name and vat:
            return ("company", company_name, vat)
        return ("values", id(vals))

    @api.model
    def _find_referee(self, vals):
        """Return the existing contact the raw details designate: same
        normalised email first, then same company name and tax ID."""
        return self._find_referees([vals])[0]

    @api.model
    def _find_referees(self, vals_list):
        """The existing contacts the raw details of ``vals_list`` designate
        (an empty recordset when none), in that order: the emails of all
        looked up in one query (the first contact in the default order for
        each, as a search limited to one finds it), then company name and
        tax ID for those found by no email."""
        Partner = self.env["res.partner"]
        emails = [
            email_normalize(vals.get("referee_email") or "") for vals in vals_list
        ]
        by_email = {}
        if any(emails):
            for partner in Partner.search_fetch(
                [("email_normalized", "in", list({e for e in emails if e}))],
                ["email_normalized"],
            ):
                by_email.setdefault(partner.email_normalized, partner)
        keys = [
            None if by_email.get(email) else self._get_referee_company_key(vals)
            for vals, email in zip(vals_list, emails, strict=True)
        ]
        by_company = self._find_referee_companies({key for key in keys if key})
        return [
            by_email.get(email) or by_company.get(key, Partner)
            for email, key in zip(emails, keys, strict=True)
        ]

    @api.model
    def _get_referee_company_key(self, vals):
        """``(company name, tax ID)`` of raw details naming both, as
        ``_find_referee_companies`` matches them; ``None`` otherwise."""
        company_name = (vals.get("referee_company_name") or "").strip()
        vat = (vals.get("referee_vat") or "").replace(" ", "").upper()
        return (company_name, vat) if company_name and vat else None

    @api.model
    def _find_referee_companies(self, keys):
        """``{(company name, tax ID): company}``: for each key, the first
        company in the default order whose name and tax ID match it as
        ``=ilike`` does (case ignored, ``%`` and ``_`` wildcards), all keys
        looked up in one query."""
        Partner = self.env["res.partner"]
        if not keys:
            return {}
        domain = expression.OR(
            [
                [("name", "=ilike", name), ("vat", "=ilike", vat)]
                for name, vat in sorted(keys)
            ]
        )
        candidates = Partner.search_fetch(
            expression.AND([[("is_company", "=", True)], domain]), ["name", "vat"]
        )
        # Accents ignored as the search did, when the database ignores them.
        unaccent = self.env.registry.unaccent_python
        patterns = {
            key: tuple(_ilike_regex(unaccent(part)) for part in key) for key in keys
        }
        found = {}
        for partner in candidates:
            for key, (name, vat) in patterns.items():
                if (
                    key not in found
                    and name.fullmatch(unaccent(partner.name or ""))
                    and vat.fullmatch(unaccent(partner.vat or ""))
                ):
                    found[key] = partner
        return found

    @api.model
    def _create_referee(self, vals):
        return self._create_referees([vals])

    @api.model
    def _create_referees(self, vals_list):
        """Create the referees of ``vals_list`` (their commercial entities,
        returned in that order): a company with its contact person, or the
        one the details name; one create per kind for all."""
        entity_vals, person_vals = [], []
        for vals in vals_list:
            company_name = (vals.get("referee_company_name") or "").strip()
            contact_name = (vals.get("referee_contact_name") or "").strip()
            if not company_name and not contact_name:
                raise ValidationError(
                    self.env._(
                        "Give at least the name of the referred company or of "
                        "the person to contact."
                    )
                )
            values = self._prepare_referee_partner_values(vals)
            if not company_name:
                entity_vals.append(dict(values, name=contact_name))
            elif not contact_name:
                entity_vals.append(dict(values, name=company_name, is_company=True))
            else:
                entity_vals.append(
                    dict(
                        values,
                        name=company_name,
                        is_company=True,
                        email=False,
                        phone=False,
                    )
                )
                person_vals.append(
                    (
                        len(entity_vals) - 1,
                        dict(
                            values,
                            name=contact_name,
                            vat=False,
                            first_contact_date=False,
                        ),
                    )
                )
        Partner = self.env["res.partner"]
        if not entity_vals:
            return Partner
        if "display_invoice_template_pdf_report_id" in Partner._fields:
            # A default that costs a query per contact (Accounting's choice
            # of invoice layout shown), the same for all: computed once.
            Partner = Partner.with_context(
                default_display_invoice_template_pdf_report_id=Partner.default_get(
                    ["display_invoice_template_pdf_report_id"]
                ).get("display_invoice_template_pdf_report_id", False)
            )
        entities = Partner.create(entity_vals)
        if person_vals and "property_product_pricelist" in Partner._fields:
            # Each contact person takes its company's pricelist (a commercial
            # field): computed for all the companies at once, not once per
            # person.
            entities.mapped("property_product_pricelist")
        if person_vals:
            Partner.create(
                [
                    dict(values, parent_id=entities[index].id)
                    for index, values in person_vals
                ]
            )
        return entities.with_env(self.env)

    @api.model
    def _prepare_referee_partner_values(self, vals):
        """Values of the contact created for a referee; ``name`` is set by
        the caller. Its first contact is the referral's day (an imported
        referral may be older than today)."""
        values = {
            "email": vals.get("referee_email"),
            "phone": vals.get("referee_phone"),
            "vat": vals.get("referee_vat"),
            "user_id": vals.get("user_id"),
        }
        if vals.get("date_referral"):
            values["first_contact_date"] = self._get_referral_day(vals)
        return values

    @api.model
    def _get_referral_day(self, vals):
        """The day of ``vals["date_referral"]`` in the time zone of the
        referral's company."""
        company = self.env["res.company"].browse(
            vals.get("company_id") or self.env.company.id
        )
        return company_day(company, vals["date_referral"])

    def _assign_referee_salesperson(self, created=None):
        """Route the referees (and their contact persons) to the sponsor's
        salesperson, when they have none, and record the referral as their
        first contact when it is. Done as superuser: routing is part of
        recording a referral, whoever records it. ``created``: the referees
        this creation made (their salesperson is not tracked as a change:
        they are born with it)."""
        # The id is cached: no query to find the source (as env.ref does).
        source = self.env["utm.source"].browse(
            self.env["ir.model.data"]._xmlid_to_res_id(
                "sale_referral_lifecycle.utm_source_referral"
            )
        )
        # The first contact is per company: the referral's. A quotation sent
        # before the referral (a code typed on it) dated the first contact
        # without knowing its channel: the referral is it.
        for (user, company), referrals in (
            self.sudo().grouped(lambda r: (r.user_id, r.company_id)).items()
        ):
            referrals.referee_id._route_referees(
                user, company, source, untracked=created
            )

    # ------------------------------------------------------------------
    # Fraud review
    # ------------------------------------------------------------------

    # Fraud checks: a referral whose referee looks like its sponsor (same
    # Tax ID, company email domain, phone or company registry), or that comes
    # in a burst from one sponsor, waits in the state *To Review*; no activity
    # runs and no reward is granted until a Sales administrator accepts it.

    def action_review_accept(self):
        """Accept referrals held for review: they become new and their
        activity plan starts."""
        to_review = self._check_reviewable()
        to_review.sudo()._flow_write({"state": "new", "review_decision": "accepted"})
        for referral in to_review:
            referral.message_post(
                body=self.env._(
                    "Review: referral accepted by %(user)s.", user=self.env.user.name
                )
            )
        to_review.sudo()._launch_activity_plan()

    def action_review_reject(self):
        to_review = self._check_reviewable()
        to_review.sudo()._flow_write(
            {"state": "rejected", "review_decision": "rejected"}
        )
        for referral in to_review:
            referral.message_post(
                body=self.env._(
                    "Review: referral rejected by %(user)s.", user=self.env.user.name
                )
            )

    def _check_reviewable(self):
        if not self.env.user.has_group(REVIEW_MANAGER_GROUP):
            raise UserError(
                self.env._(
                    "Only Sales administrators accept or reject referrals held "
                    "for review."
                )
            )
        to_review = self.filtered(lambda r: r.state == "to_review")
        if to_review != self:
            raise UserError(self.env._("Only referrals to review can be reviewed."))
        return to_review

    def _flag_suspicious(self, burst=True):
        """Hold for review the open referrals (not born from an order) that
        look fraudulent, cancelling their calls; return them. Without
        ``burst``, the number of referrals per hour is not counted (a
        referral whose parties changed after its creation)."""
        flagged = self.browse()
        for referral in self.sudo().filtered(
            lambda r: r.state in OPEN_STATES and not r.first_order_id
        ):
            reasons = referral._get_fraud_reasons(burst=burst)
            accepted = (referral.review_reason or "").splitlines()
            if not reasons or (
                referral.review_decision == "accepted" and set(reasons) <= set(accepted)
            ):
                # A Sales administrator accepted these reasons already.
                continue
            reason = "\n".join(reasons)
            referral._flow_write({"state": "to_review", "review_reason": reason})
            # A referral held after its creation had its calls planned.
            referral.activity_ids.unlink()
            referral.message_post(
                body=self.env._(
                    "Held for review by a Sales administrator: %(reason)s",
                    reason=reason,
                )
            )
            flagged |= referral
        return flagged.with_env(self.env)

    def _get_fraud_reasons(self, burst=True):
        """Why this referral looks fraudulent, in words (empty: it does not);
        ``burst``: also count the sponsor's referrals of the last hour."""
        self.ensure_one()
        sponsor = self.sponsor_id.commercial_partner_id
        referee = self.referee_id.commercial_partner_id
        sponsor_people = sponsor | sponsor.child_ids
        referee_people = referee | referee.child_ids
        reasons = []
        vat = fraud_signals.normalize_identifier(referee.vat or self.referee_vat)
        if vat and vat == fraud_signals.normalize_identifier(sponsor.vat):
            reasons.append(self.env._("The referee has the sponsor's Tax ID."))
        registry = fraud_signals.normalize_identifier(referee.company_registry)
        if registry and registry == fraud_signals.normalize_identifier(
            sponsor.company_registry
        ):
            reasons.append(
                self.env._("The referee has the sponsor's company registry number.")
            )
        referee_domains = fraud_signals.company_email_domains(
            referee_people.mapped("email") + [self.referee_email]
        )
        if referee_domains & fraud_signals.company_email_domains(
            sponsor_people.mapped("email")
        ):
            reasons.append(self.env._("The referee's email domain is the sponsor's."))
        referee_phones = fraud_signals.normalize_phones(
            referee_people.mapped("phone")
            + referee_people.mapped("mobile")
            + [self.referee_phone]
        )
        if referee_phones & fraud_signals.normalize_phones(
            sponsor_people.mapped("phone") + sponsor_people.mapped("mobile")
        ):
            reasons.append(self.env._("The referee has the sponsor's phone number."))
        limit = self.program_id.fraud_burst_limit if burst else 0
        if limit and self.source in PORTAL_SOURCES:
            recent = self._count_recent_portal_referrals(sponsor)
            if recent > limit:
                reasons.append(
                    self.env._(
                        "The sponsor sent %(count)s referrals within an hour "
                        "(more than %(limit)s).",
                        count=recent,
                        limit=limit,
                    )
                )
        return reasons

    @api.model
    def _count_recent_portal_referrals(self, sponsor):
        """Referrals ``sponsor`` sent within the last hour through its portal
        and its public link, this one included: each such referral left a
        portal attempt (recorded once it is created). Referrals entered by
        staff or imported are no burst of the sponsor."""
        since = fields.Datetime.now() - timedelta(hours=1)
        # sudo: attempts are the portal's bookkeeping, read by no user.
        sent = (
            self.env["referral.portal.attempt"]
            .sudo()
            .search_count([("sponsor_id", "=", sponsor.id), ("date", ">=", since)])
        )
        return sent + 1

    # ------------------------------------------------------------------
    # Import (base_import)
    # ------------------------------------------------------------------

    # Import of referrals with Odoo's import (base_import): the sponsor named
    # by its name, email or referral code in ``sponsor_ref``, each refused row
    # named in its error. The rows go through the referral's normal create:
    # referee matching, rules, fraud checks and routing apply as by hand.

    @api.depends("sponsor_id.referral_code")
    def _compute_sponsor_ref(self):
        # The code: unique, so an exported file imports back.
        for referral in self:
            referral.sponsor_ref = referral.sponsor_id.referral_code

    def _inverse_sponsor_ref(self):
        sponsors = self._resolve_sponsor_refs(self.mapped("sponsor_ref"))
        for referral in self.filtered("sponsor_ref"):
            sponsor = sponsors[referral.sponsor_ref.strip()]
            if referral.sponsor_id != sponsor:
                referral.sponsor_id = sponsor

    @api.model
    def get_import_templates(self):
        return [
            {
                "label": self.env._("Import Template for Referrals"),
                "template": IMPORT_TEMPLATE,
            }
        ]

    @api.model
    def load(self, fields, data):
        """Import, in two steps:

        - a column mapped to a field the referral's actions set
          (``ACTION_FIELDS``: status, dates, first order, review, consent) is
          refused on each row that fills it, before anything is read or
          written (a status of New, the state every referral starts in,
          passes), whoever calls ``load``;
        - a refused row is named once, by its number counted from 1 after the
          header, which the import dialog shows as "Error at row N" (``load``
          counts from 0, as the dialog's column errors do not). The rows the
          fraud checks held for review come back under ``referral_held``, as
          ``(row, reason)`` pairs, for the dialog to report
          (``base_import.import.execute_import``)."""
        messages = self._check_import_action_columns(fields, data)
        if messages:
            return {"ids": False, "messages": messages, "nextrow": 0}
        if not self.env.context.get("import_file"):
            return super().load(fields, data)
        held = []
        result = super(
            ReferralReferral, self.with_context(referral_import_held=held)
        ).load(fields, data)
        for message in result["messages"]:
            rows = message.get("rows") or {}
            if "record" in message and "from" in rows:
                message["record"] = rows["from"] + 1
        if result["ids"] and held:
            result["referral_held"] = held
        return result

    @api.model
    def _check_import_action_columns(self, fields, data):
        """The import errors of the cells of ``data`` that fill a field the
        referral's actions set: one per row and column, read from the cells
        alone (no query)."""
        columns = [
            (index, path.split("/")[0])
            for index, path in enumerate(fields)
            if path and path.split("/")[0] in ACTION_FIELDS
        ]
        if not columns:
            return []
        new_names = {
            "new",
            dict(self._fields["state"]._description_selection(self.env))["new"].lower(),
        }
        messages = []
        for row, values in enumerate(data):
            for index, fname in columns:
                value = (values[index] if index < len(values) else "") or ""
                value = value.strip()
                if not value or (fname == "state" and value.lower() in new_names):
                    continue
                label = self._fields[fname]._description_string(self.env)
                messages.append(
                    {
                        "type": "error",
                        "rows": {"from": row, "to": row},
                        "record": row + 1,
                        "field": fname,
                        "field_name": label,
                        "message": self.env._(
                            "The column %(column)s cannot be imported: a "
                            "referral starts as New, and its buttons and the "
                            "referee's orders set %(column)s. Remove the "
                            "column from the file.",
                            column=label,
                        ),
                    }
                )
        return messages

    @api.model
    def _load_records(self, data_list, update=False, ignore_duplicates=False):
        """Import: each refused row is reported on its own row, and the rows
        held for review are noted for ``load``."""
        if not self.env.context.get("import_file"):
            return super()._load_records(data_list, update, ignore_duplicates)
        try:
            referrals = super()._load_records(data_list, update, ignore_duplicates)
        except UserError as error:
            if len(data_list) > 1:
                raise RetryRowByRow() from error
            raise
        held = self.env.context.get("referral_import_held")
        if held is not None:
            # The records come back in the order of their rows.
            for data, referral in zip(data_list, referrals, strict=True):
                if referral.state == "to_review":
                    row = data.get("info", {}).get("rows", {}).get("from", 0) + 1
                    held.append((row, referral.sudo().review_reason))
        return referrals

    @api.model
    def _resolve_sponsor_refs(self, refs):
        """Return ``{reference: commercial entity}`` for the sponsor
        references ``refs``, each a referral code, an email or a name (tried
        in this order, three queries for all). Raise a ValidationError naming
        the first reference that matches no contact or several customers
        (commercial entities)."""
        refs = {ref.strip() for ref in refs if ref and ref.strip()}
        if not refs:
            return {}
        Partner = self.env["res.partner"]
        by_code = Partner._find_by_referral_code(refs)
        found = {
            ref: by_code[normalize_referral_code(ref)]
            for ref in refs
            if normalize_referral_code(ref) in by_code
        }
        emails = {
            ref: email_normalize(ref)
            for ref in refs - set(found)
            if "@" in ref and email_normalize(ref)
        }
        names = {ref: ref.lower() for ref in refs - set(found) - set(emails)}
        matches = defaultdict(Partner.browse)
        if emails:
            partners = Partner.search_fetch(
                [("email_normalized", "in", list(set(emails.values())))],
                ["email_normalized", "commercial_partner_id"],
            )
            for partner in partners:
                matches[partner.email_normalized] |= partner.commercial_partner_id
        if names:
            partners = Partner.search_fetch(
                expression.OR([[("name", "=ilike", name)] for name in names.values()]),
                ["name", "commercial_partner_id"],
            )
            for partner in partners:
                matches[partner.name.lower()] |= partner.commercial_partner_id
        for ref in sorted(refs - set(found)):
            sponsors = matches[emails.get(ref) or names.get(ref)]
            if not sponsors:
                raise ValidationError(
                    self.env._(
                        'No contact matches the sponsor "%(sponsor)s": give the '
                        "referral code, email or name of an existing contact.",
                        sponsor=ref,
                    )
                )
            if len(sponsors) > 1:
                raise ValidationError(
                    self.env._(
                        'Several contacts match the sponsor "%(sponsor)s" '
                        "(%(contacts)s): give its referral code or email "
                        "instead.",
                        sponsor=ref,
                        contacts=", ".join(sponsors.mapped("display_name")),
                    )
                )
            found[ref] = sponsors
        return found

    # ------------------------------------------------------------------
    # Activity plan
    # ------------------------------------------------------------------

    def _launch_activity_plan(self):
        """Schedule the program's activity plan on each referral (due on the
        company's working days; a template without responsible goes to the
        referral's salesperson, else to whoever recorded it), then log it for
        the follow-up rules: the plan is the default action of the *New
        referral* rule, so the cron does not launch it again, and the other
        *New referral* rules fire with the cron, woken now."""
        referrals = self.filtered("program_id.activity_plan_id")
        now = fields.Datetime.now()
        days_by_company = {}
        vals_list, followers = [], {}
        for referral in referrals:
            plan = referral.program_id.activity_plan_id
            company = referral.company_id
            if company not in days_by_company:
                days_by_company[company] = WorkingDays(
                    company, now, window_days=PLAN_WINDOW_DAYS
                )
            plan_vals = plan._prepare_scheduled_activities_values(
                referral,
                days_by_company[company],
                on_demand=referral.user_id,
                fallback=lambda r=referral: r.user_id or r.create_uid,
            )
            # Followed first: creating several activities of one user on one
            # record in a batch would subscribe that user twice.
            users = frozenset(vals["user_id"] for vals in plan_vals)
            followers[users] = followers.get(users, referral.browse()) | referral
            vals_list += plan_vals
        # One subscription per set of responsibles (an imported file).
        for user_ids, followed in followers.items():
            followed.message_subscribe(
                partner_ids=self.env["res.users"].browse(user_ids).partner_id.ids
            )
        activities = self.env["mail.activity"].create(vals_list)
        if self:
            self.env["partner.followup.engine"].sudo()._log_referral_plans(
                self, activities
            )
        return activities

    # ------------------------------------------------------------------
    # Rewards
    # ------------------------------------------------------------------

    # The sponsor's reward follows the referee's documents: earned while the
    # referral's qualifying order (the first confirmed order that won it,
    # not fully refunded) stands, and, per program, once its invoice is
    # paid. ``referral.ledger._sync_rewards`` posts the difference, once per
    # referral whatever the path.

    def _grant_rewards(self):
        """Post the rewards these referrals earn now (and revoke those they
        no longer earn); returns the transactions posted."""
        return self.env["referral.ledger"]._sync_rewards(self, announce_zero=True)

    def _get_reward_qualifying_orders(self):
        """{referral: its qualifying order, or an empty recordset}: the
        earliest confirmed order of the referee linked to the referral that
        its credit notes do not refund in full."""
        # sudo: the referee's orders may belong to other salespeople.
        Order = self.env["sale.order"].sudo()
        qualifying = {referral: Order for referral in self}
        orders = Order.search(
            [("referral_id", "in", self.ids), ("state", "=", "sale")],
            order="date_order, id",
        )
        for order in orders:
            referral = order.referral_id
            if referral in qualifying and not qualifying[referral]:
                if not order._referral_is_fully_refunded():
                    qualifying[referral] = order
        return qualifying

    def _is_reward_earned(self, order):
        """Whether this referral earns its reward through ``order`` (its
        qualifying order): an accepted referral, its reward not refused by
        an approver, and, for a program rewarding on payment, an invoice of
        the order paid."""
        self.ensure_one()
        if not order or self.state not in ACCEPTED_STATES or self.reward_refused:
            return False
        if self.program_id.reward_trigger == "invoice_paid":
            return any(
                move.move_type == "out_invoice"
                and move.state == "posted"
                and move.payment_state in ("paid", "in_payment")
                for move in order.sudo().invoice_ids
            )
        return True

    def _get_reward_net_amount(self):
        """Credit this referral's posted rewards still add: their amounts
        less their reversals."""
        self.ensure_one()
        reward_credits = self.sudo().transaction_ids.filtered(
            lambda t: t.transaction_type == "credit" and t.state == "posted"
        )
        reversed_amount = sum(
            reward_credits.reversal_ids.filtered(
                lambda r: r.state == "posted" and r.direction == "out"
            ).mapped("amount")
        )
        return self.currency_id.round(
            sum(reward_credits.mapped("amount")) - reversed_amount
        )

    def _update_reward_states(self, qualifying):
        """Won while a qualifying order stands (with that order as its
        first order), reopened when none does any more: the reward revoked,
        as the chatter says."""
        now = fields.Datetime.now()
        for referral in self.sudo():
            order = qualifying[referral]
            state = referral.state
            if order and state in OPEN_STATES:
                referral._flow_write(
                    {"state": "won", "first_order_id": order.id, "date_won": now}
                )
            elif order and state in ("won", "rewarded"):
                if referral.first_order_id != order:
                    referral._flow_write({"first_order_id": order.id})
                if state == "rewarded" and not referral._is_reward_earned(order):
                    referral._flow_write({"state": "won", "date_rewarded": False})
            elif not order and state in ("won", "rewarded"):
                referral._post_revocation_message()
                referral._flow_write(
                    {
                        "state": "in_progress",
                        "first_order_id": False,
                        "date_won": False,
                        "date_rewarded": False,
                    }
                )

    def _post_revocation_message(self):
        """Say why the reward goes, and what of it the sponsor already spent
        or lost (reversed as soon as the documents that spent it give it
        back)."""
        self.ensure_one()
        first_order = self.sudo().first_order_id
        if first_order.state == "cancel" or not first_order:
            reason = self.env._("the referee's first order was cancelled.")
        else:
            reason = self.env._("the referee's first order was refunded.")
        body = self.env._("The reward was revoked: %(reason)s", reason=reason)
        reward_credits = self.sudo().transaction_ids.filtered(
            lambda t: t.transaction_type == "credit" and t.state == "posted"
        )
        spent = sum(reward_credits.mapped("amount")) - sum(
            reward_credits.mapped("remaining_amount")
        )
        spent -= sum(
            reward_credits.reversal_ids.filtered(
                lambda r: r.state == "posted" and r.direction == "out"
            ).mapped("amount")
        )
        if self.currency_id.compare_amounts(spent, 0) > 0:
            body = self.env._(
                "%(body)s The sponsor had already spent or lost %(amount)s of "
                "it: what the documents that spent it give back is revoked "
                "then.",
                body=body,
                amount=format_amount(self.env, spent, self.currency_id),
            )
        self.message_post(body=body)

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
        """Mark the referrals rewarded and tell their sponsors (the email is
        queued: not rendered within the confirmation or payment)."""
        self.sudo()._flow_write({"state": "rewarded"})
        self.env["referral.notification"]._queue(
            self, "sale_referral_lifecycle.mail_template_referral_reward"
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

    # ------------------------------------------------------------------
    # Emails
    # ------------------------------------------------------------------

    # Emails of a referral's life, queued (never rendered within the order
    # confirmation that triggers them).

    def _queue_won_email(self):
        """Tell the sponsors of the referrals still won (not rewarded) that
        their referral ordered."""
        return self.env["referral.notification"]._queue(
            self.filtered(lambda r: r.state == "won"),
            "sale_referral_lifecycle.mail_template_referral_won",
        )

    # ------------------------------------------------------------------
    # Portal and public link
    # ------------------------------------------------------------------

    # Referrals sent by customers from their portal or by visitors of a
    # public referral link: validation in the customer's words, daily limits,
    # creation routed as in the back office.

    @api.model
    def _portal_get_program(self, company):
        """The program of ``company`` when it takes referrals from the portal."""
        program = self.env["referral.program"].sudo()._get_company_program(company)
        return program if program.portal_enabled else program.browse()

    @api.model
    def _portal_create_referral(self, sponsor, form, source, ip_address):
        """Create the referral ``form`` describes for ``sponsor`` (a
        commercial entity), as superuser: the customer has no right on
        referrals but this one. Return ``(referral, errors)``: errors maps a
        form field (or ``"form"``) to a message for the customer, and nothing
        is written when there is one.

        The sponsor on its portal (``source`` "portal") is told why a
        referral is refused. A referral link's visitor (``source`` "code")
        is anonymous: whatever the details, once the form is valid it gets
        no error (the same confirmation), and the outcome is recorded
        (the referral, held for review or not, or a refused row of the
        portal log) and told to the sponsor and its salesperson only."""
        company = sponsor.company_id or self.env.company
        program = self._portal_get_program(company)
        if not program:
            return self.browse(), {
                "form": self.env._("Referrals are not open at the moment.")
            }
        errors = self._portal_validate_form(form, visitor=source == "code")
        if errors:
            return self.browse(), errors
        Attempt = self.env["referral.portal.attempt"].sudo()
        if Attempt._is_over_limit(sponsor, ip_address, program.portal_daily_limit):
            return self.browse(), {
                "form": self.env._(
                    "You have reached today's limit of referrals. Thank you! "
                    "Please try again tomorrow."
                )
            }
        vals = self._portal_prepare_referral_values(
            sponsor, company, form, source, program
        )
        log_values = {
            "program_id": program.id,
            "source": source,
            "referee_company_name": vals["referee_company_name"],
        }
        refusal = self._portal_get_refusal(sponsor, program, vals)
        referral = self.browse()
        if not refusal:
            try:
                with self.env.cr.savepoint():
                    referral = self.sudo()._flow_create(vals)
            except (UserError, ValidationError):
                refusal = "not_recorded"
        if refusal:
            if source == "portal":
                return self.browse(), {"form": self._portal_refusal_message(refusal)}
            Attempt._record(
                sponsor, ip_address, outcome="refused", refusal=refusal, **log_values
            )._notify_refused()
            return self.browse(), {}
        Attempt._record(
            sponsor,
            ip_address,
            outcome="review" if referral.state == "to_review" else "accepted",
            referral_id=referral.id,
            **log_values,
        )
        referral._portal_notify_received()
        return referral, {}

    @api.model
    def _portal_validate_form(self, form, visitor=False):
        """{field: message} for the fields of ``form`` the customer must fix:
        required ones, the email's format, each field's length, control
        characters (line breaks only in the message), the consent;
        ``visitor``: the form of a referral link, filled in by the person to
        contact."""
        errors = {}
        for name, size in PORTAL_FORM_SIZES.items():
            value = form.get(name) or ""
            if len(value) > size:
                errors[name] = self.env._(
                    "Keep it under %(size)s characters.", size=size
                )
            elif has_control_characters(value, multiline=name == "message"):
                errors[name] = self.env._(
                    "Remove the special characters (control characters) from "
                    "this field."
                )
        if not (form.get("company_name") or "").strip():
            errors["company_name"] = (
                self.env._("Enter the name of your company.")
                if visitor
                else self.env._("Enter the name of the company.")
            )
        if not (form.get("contact_name") or "").strip():
            errors["contact_name"] = (
                self.env._("Enter your name.")
                if visitor
                else self.env._("Enter the name of your contact.")
            )
        email = (form.get("email") or "").strip()
        if not email:
            errors["email"] = (
                self.env._("Enter your email address.")
                if visitor
                else self.env._("Enter your contact's email address.")
            )
        elif "email" not in errors and not email_normalize(email):
            errors["email"] = self.env._(
                "This email address is not valid (e.g. name@company.com)."
            )
        if not form.get("consent"):
            errors["consent"] = self.env._(
                "Tick this box: we only contact people who agreed to it."
            )
        return errors

    @api.model
    def _portal_prepare_referral_values(self, sponsor, company, form, source, program):
        message = (form.get("message") or "").strip()
        return {
            "sponsor_id": sponsor.id,
            "company_id": company.id,
            "source": source,
            "referee_company_name": single_line(form["company_name"]),
            "referee_contact_name": single_line(form["contact_name"]),
            "referee_email": form["email"].strip(),
            "referee_phone": single_line(form.get("phone")) or False,
            # Escaped: the message is text, never markup.
            "note": plaintext2html(message) if message else False,
            # The consent the form asked for, with the words it used.
            "referee_consent_date": fields.Datetime.now(),
            "referee_consent_text": program.portal_consent_text,
        }

    @api.model
    def _portal_get_refusal(self, sponsor, program, vals):
        """Why the back office would refuse this referral, as a key of
        ``referral.portal.attempt``'s refusals; False when it may be created
        (its creation still runs every rule)."""
        if not sponsor.active or not program._is_sponsor_eligible(sponsor):
            return "ineligible"
        referee = self.sudo()._find_referee(vals).commercial_partner_id
        if not referee:
            return False
        if referee == sponsor:
            return "own_company"
        if self._is_sponsor_cycle(sponsor, referee):
            return "cycle"
        if self.sudo().search_count(
            [
                ("referee_id", "=", referee.id),
                ("company_id", "=", vals["company_id"]),
                ("state", "in", ACTIVE_STATES),
            ],
            limit=1,
        ):
            return "already_referred"
        if not program.allow_customer_referee and referee._get_company_customers(
            program.company_id
        ):
            return "customer"
        return False

    @api.model
    def _portal_refusal_message(self, refusal):
        """The refusal ``refusal`` in the words of the sponsor on its
        portal."""
        return {
            "ineligible": self.env._(
                "Your account cannot refer companies yet: please contact your "
                "salesperson."
            ),
            "own_company": self.env._("You cannot refer your own company."),
            "cycle": self.env._(
                "This company referred you to us: it cannot be referred back."
            ),
            "already_referred": self.env._(
                "This company has already been referred to us. Thank you all the "
                "same!"
            ),
            "customer": self.env._(
                "This company is already our customer: the program rewards "
                "new customers only."
            ),
        }.get(
            refusal,
            self.env._(
                "We could not record this referral. Please check the details "
                "or contact us."
            ),
        )

    def _portal_notify_received(self):
        """Queue the emails of a referral sent from the portal or a link:
        the sponsor's acknowledgement and the salesperson's notice."""
        self.ensure_one()
        self.sudo()._send_referral_mail(
            "sale_referral_lifecycle.mail_template_referral_received"
        )
        if self.user_id:
            self.sudo()._send_referral_mail(
                "sale_referral_lifecycle.mail_template_referral_new_salesperson"
            )

    def _send_referral_mail(self, template_xmlid):
        """Queue the email of ``template_xmlid`` for each referral (sent by
        the mail queue's cron, not within the current request)."""
        template = self.env.ref(template_xmlid, raise_if_not_found=False)
        if not template:
            return
        for referral in self:
            template.send_mail(referral.id, force_send=False)
