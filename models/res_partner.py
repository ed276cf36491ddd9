# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The contact in this addon, in sections: its referral code and
sponsoring, its wallet balance, its lifecycle stage per company (moved by
``partner.lifecycle.engine``), its first contact and its follow-ups."""

from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.http import request
from odoo.tools import SQL, format_date

from .local_day import company_today, company_tz_sql
from .referral.action_flow import action_flow, in_action_flow
from .referral.referral_code import (
    CODE_MAX_LENGTH,
    CODE_MIN_LENGTH,
    generate_referral_code,
    normalize_referral_code,
)
from .referral.referral_referral import ACTIVE_STATES, REVIEW_MANAGER_GROUP


class ResPartner(models.Model):
    _inherit = "res.partner"

    referral_code = fields.Char(
        default=lambda self: generate_referral_code(),
        copy=False,
        # No index=True: the UNIQUE constraint below is its index already.
        size=CODE_MAX_LENGTH,
        readonly=True,
        tracking=True,
        help="Code the customer shares with the companies it refers; typed on "
        "their first sales order, it links them to this customer. Changed "
        "only by Sales administrators; a replaced code is never given to "
        "another contact.",
    )
    sponsor_id = fields.Many2one(
        "res.partner",
        string="Referred By",
        compute="_compute_sponsor_id",
        store=True,
        index="btree_not_null",
        help="Sponsor of the active referral of this customer.",
    )
    referral_ids = fields.One2many(
        "referral.referral",
        "sponsor_id",
        string="Referrals",
        help="Companies this customer referred.",
    )
    referee_referral_ids = fields.One2many(
        "referral.referral", "referee_id", string="Referrals Received"
    )
    referral_count = fields.Integer(compute="_compute_referral_count")
    referral_wallet_ids = fields.One2many(
        "referral.wallet", "partner_id", string="Referral Wallets"
    )
    referral_credit_balance = fields.Monetary(
        string="Referral Credit",
        compute="_compute_referral_credit_balance",
        currency_field="referral_credit_currency_id",
        groups="sales_team.group_sale_salesman,account.group_account_invoice",
        help="Credit of the commercial entity's wallet in the current company.",
    )
    referral_credit_currency_id = fields.Many2one(
        "res.currency", compute="_compute_referral_credit_balance"
    )
    referral_sponsor_refusal = fields.Char(
        string="Cannot Sponsor",
        compute="_compute_referral_sponsor_refusal",
        help="Why this contact may not refer a company in the current "
        "company's referral program; empty when it may.",
    )
    followup_blocked = fields.Boolean(
        string="No Automated Follow-ups",
        help="Follow-up rules skip this contact (and log it).",
    )
    followup_log_ids = fields.One2many(
        "partner.followup.log", "partner_id", string="Follow-ups"
    )
    followup_count = fields.Integer(
        string="Follow-up Count", compute="_compute_followup_next"
    )
    followup_next = fields.Char(
        string="Next Follow-up",
        compute="_compute_followup_next",
        help="The next follow-up planned: an open follow-up activity or a "
        "postponed step.",
    )

    # The lifecycle is per company (``company_dependent``: one jsonb column
    # keyed by company id, read, searched and grouped in the current
    # company): a contact shared by several companies has a stage and
    # aggregates in each, from that company's orders only.
    # ``index=False``: the values the engine writes for nearly every contact
    # it places (stage, counts, customers' dates and figures) go without
    # Odoo's default ``(column IS NOT NULL)`` index of company-dependent
    # fields: no search reads it (it holds nearly every row, a scan is
    # faster) and the full placement paid an entry in each per contact. The
    # sparse ones (lock, channel, subscription end, referrals, renewals,
    # lapse start) keep theirs: searches for them read a few rows through it,
    # the nightly job's lookups of the subscriptions ending and of the
    # contacts waiting to move down (``... IS NOT NULL``) too.
    lifecycle_stage_id = fields.Many2one(
        "partner.lifecycle.stage",
        company_dependent=True,
        index=False,
        tracking=True,
        copy=False,
        ondelete="restrict",
        group_expand="_read_group_lifecycle_stage_ids",
        help="Moves by itself with the stage criteria; a manual move locks it. "
        "One stage per company.",
    )
    lifecycle_stage_locked = fields.Boolean(
        string="Stage Locked",
        company_dependent=True,
        copy=False,
        tracking=True,
        help="Moved by hand: the stage criteria leave this contact alone in "
        "this company until it is unlocked.",
    )
    lifecycle_stage_date = fields.Datetime(
        string="In Stage Since", company_dependent=True, index=False, copy=False
    )
    lifecycle_quotation_count = fields.Integer(
        string="Quotations Received",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
        help="Quotations of this company sent to the contact.",
    )
    lifecycle_order_count = fields.Integer(
        string="Confirmed Orders",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
        help="Confirmed orders of this company.",
    )
    lifecycle_last_order_date = fields.Datetime(
        string="Last Order",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
    )
    lifecycle_history_ids = fields.One2many(
        "partner.lifecycle.history", "partner_id", string="Stage History"
    )
    first_contact_date = fields.Date(
        company_dependent=True,
        index=False,
        copy=False,
        help="Set when the contact is created in this company, else from its "
        "first quotation (or referral) here.",
    )
    first_contact_source_id = fields.Many2one(
        "utm.source", company_dependent=True, copy=False
    )
    first_contact_medium_id = fields.Many2one(
        "utm.medium", company_dependent=True, copy=False
    )
    lifecycle_converted = fields.Integer(
        string="Conversion Rate (%)",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
        aggregator="avg",
        help="100 once the contact confirmed an order of this company, else 0: "
        "its average over contacts is their conversion rate.",
    )
    lifecycle_days_to_client = fields.Integer(
        string="Days to Client",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
        aggregator="avg",
        help="Days from the first contact to the first confirmed order.",
    )
    subscription_end_date = fields.Date(
        company_dependent=True,
        readonly=True,
        copy=False,
        help="End of the subscription bought through confirmed orders of "
        "subscription products of this company.",
    )
    lifecycle_first_order_date = fields.Date(
        string="Customer Since",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
        help="Day of the first confirmed order of this company.",
    )
    lifecycle_renewal_count = fields.Integer(
        string="Renewals",
        company_dependent=True,
        readonly=True,
        copy=False,
        help="Confirmed renewal orders of this company.",
    )
    lifecycle_referral_count = fields.Integer(
        string="Referrals Brought",
        company_dependent=True,
        readonly=True,
        copy=False,
        help="Accepted referrals the contact brought to this company (counted "
        "when a stage reads them).",
    )
    lifecycle_referral_won_count = fields.Integer(
        string="Referrals Won",
        company_dependent=True,
        readonly=True,
        copy=False,
        help="Referrals the contact brought whose referee ordered (counted "
        "when a stage reads them).",
    )
    lifecycle_paid_on_time_rate = fields.Integer(
        string="Invoices Paid on Time (%)",
        company_dependent=True,
        index=False,
        readonly=True,
        copy=False,
        help="Share of the invoices of this company paid by their due date, "
        "among those paid or overdue (counted when a stage reads it).",
    )
    # Orders and revenue in the stages' time windows, as JSON text: read by
    # the Why this stage section.
    lifecycle_window_figures = fields.Char(
        company_dependent=True, index=False, readonly=True, copy=False
    )
    lifecycle_down_since = fields.Datetime(
        string="Criteria Lapsed Since",
        company_dependent=True,
        readonly=True,
        copy=False,
        help="The criteria of the contact's stage stopped holding then: it "
        "moves down once the stage's days before moving down have passed.",
    )
    lifecycle_criteria_met = fields.Text(
        string="Criteria Met",
        compute="_compute_lifecycle_why",
        help="The criteria of the contact's stage it meets, with its figures.",
    )
    lifecycle_next_stage_id = fields.Many2one(
        "partner.lifecycle.stage",
        string="Next Stage",
        compute="_compute_lifecycle_why",
    )
    lifecycle_next_stage_missing = fields.Text(
        string="Missing for Next Stage",
        compute="_compute_lifecycle_why",
    )
    lifecycle_down_date = fields.Date(
        string="Leaves Stage On",
        compute="_compute_lifecycle_why",
        help="The criteria of the stage no longer hold: the contact moves "
        "down that day unless they hold again.",
    )
    lifecycle_down_warning = fields.Char(
        string="Waiting Move Down", compute="_compute_lifecycle_why"
    )

    _sql_constraints = [
        (
            "referral_code_unique",
            "UNIQUE(referral_code)",
            "This referral code is already used by another contact.",
        ),
    ]

    def _init_column(self, column_name):
        if column_name == "lifecycle_window_figures":
            # Upgraded from a version without the figures Why this stage
            # reads: every contact is placed again in the background.
            self.env["partner.lifecycle.stage"]._schedule_lifecycle_recompute()
        # The default would give every existing contact the same code.
        if column_name != "referral_code":
            return super()._init_column(column_name)
        return self._fill_missing_referral_codes()

    @api.depends(
        "commercial_partner_id.referee_referral_ids.state",
        "commercial_partner_id.referee_referral_ids.sponsor_id",
    )
    def _compute_sponsor_id(self):
        for partner in self:
            referrals = partner.commercial_partner_id.referee_referral_ids.filtered(
                lambda r: r.state in ACTIVE_STATES
            )
            partner.sponsor_id = referrals[:1].sponsor_id

    @api.depends("commercial_partner_id")
    def _compute_referral_count(self):
        counts = dict(
            self.env["referral.referral"]._read_group(
                [("sponsor_id", "in", self.commercial_partner_id.ids)],
                ["sponsor_id"],
                ["__count"],
            )
        )
        for partner in self:
            partner.referral_count = counts.get(partner.commercial_partner_id, 0)

    @api.depends_context("company")
    @api.depends("commercial_partner_id")
    def _compute_referral_credit_balance(self):
        company = self.env.company
        wallets = self.env["referral.wallet"].search(
            [
                ("partner_id", "in", self.commercial_partner_id.ids),
                ("company_id", "=", company.id),
            ]
        )
        balance_by_partner = {w.partner_id: w.balance for w in wallets}
        for partner in self:
            partner.referral_credit_currency_id = company.currency_id
            partner.referral_credit_balance = balance_by_partner.get(
                partner.commercial_partner_id, 0.0
            )

    # Read on the contact form only: no dependencies, whose inverses would
    # cost a query on every order confirmation (stages move then).
    @api.depends_context("company")
    def _compute_referral_sponsor_refusal(self):
        refusals = self._get_referral_sponsor_refusals(self.env.company)
        for partner in self:
            partner.referral_sponsor_refusal = refusals.get(
                partner.commercial_partner_id, False
            )

    @api.depends("followup_log_ids")
    def _compute_followup_next(self):
        Log = self.env["partner.followup.log"]
        partners = self.commercial_partner_id
        counts = dict(
            Log._read_group(
                [("partner_id", "in", partners.ids)], ["partner_id"], ["__count"]
            )
        )
        postponed = Log.search(
            [("partner_id", "in", partners.ids), ("outcome", "=", "postponed")],
            order="scheduled_date, id",
        )
        activities = self.env["mail.activity"].search(
            [
                ("followup_log_id.partner_id", "in", partners.ids),
                ("followup_log_id", "!=", False),
            ],
            order="date_deadline, id",
        )
        for partner in self:
            commercial = partner.commercial_partner_id
            partner.followup_count = counts.get(commercial, 0)
            candidates = [
                (a.date_deadline, a.summary or a.activity_type_id.name)
                for a in activities
                if a.followup_log_id.partner_id == commercial
            ][:1] + [
                (log.scheduled_date, log.step_id.name)
                for log in postponed
                if log.partner_id == commercial
            ][:1]
            nearest = min(candidates, default=None)
            partner.followup_next = (
                self.env._(
                    "%(what)s on %(date)s",
                    what=nearest[1],
                    date=fields.Date.to_string(nearest[0]),
                )
                if nearest
                else False
            )

    # ------------------------------------------------------------------
    # CRUD
    # ------------------------------------------------------------------

    @api.model_create_multi
    def create(self, vals_list):
        """A commercial entity enters the lifecycle the moment it is created
        (by hand, by import, by a referral or from the portal): its first
        contact dated, with its channel when known, and its first stage."""
        channel = self._get_first_contact_channel()
        vals_list = [
            self._prepare_first_contact_values(vals, channel)
            if self._is_commercial_entity_values(vals)
            else vals
            for vals in vals_list
        ]
        vals_list = self._prepare_referral_code_create_values(vals_list)
        given_codes = {vals.get("referral_code") for vals in vals_list}
        partners = super().create(vals_list)
        # A generated code is never a retired one (a code given was checked).
        partners.filtered(
            lambda p: p.referral_code not in given_codes
        )._replace_retired_referral_codes()
        # Its first stage at once (Suspect by default), with its history row.
        partners.filtered(
            lambda p: p.commercial_partner_id == p and not p.lifecycle_stage_id
        )._lifecycle_recompute()
        return partners

    def write(self, vals):
        if "referral_code" in vals:
            vals = self._prepare_referral_code_write_values(vals)
        entities_before = (
            {partner: partner.commercial_partner_id for partner in self}
            if {"parent_id", "is_company"} & set(vals)
            else {}
        )
        if "lifecycle_stage_id" in vals and not self.env.context.get(
            "lifecycle_automatic"
        ):
            vals = dict(
                vals,
                lifecycle_stage_date=fields.Datetime.now(),
                # A manual move ends a move down that waited.
                lifecycle_down_since=False,
            )
            vals.setdefault("lifecycle_stage_locked", True)
            moved = self.filtered(
                lambda p: p.lifecycle_stage_id.id != vals["lifecycle_stage_id"]
            )
            history = moved._prepare_lifecycle_history_values(
                vals["lifecycle_stage_id"], automatic=False
            )
            res = super().write(vals)
            self.env["partner.lifecycle.history"].sudo().create(history)
        else:
            res = super().write(vals)
        if entities_before:
            self._referral_check_credit_binding(entities_before)
        return res

    @api.ondelete(at_uninstall=False)
    def _unlink_retire_referral_codes(self):
        # The links and orders carrying a deleted contact's code never lead
        # to another contact.
        self._retire_referral_codes()

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_view_referral_wallet(self):
        self.ensure_one()
        wallet = self.env["referral.wallet"]._get_or_create(self, self.env.company)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_wallet"
        )
        action.update({"res_id": wallet.id, "views": [(False, "form")]})
        return action

    def action_view_referrals(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        sponsor = self.commercial_partner_id
        action["domain"] = [("sponsor_id", "=", sponsor.id)]
        action["context"] = {"default_sponsor_id": sponsor.id}
        return action

    def action_refer_company(self):
        self.ensure_one()
        self._check_referral_sponsor(self.env.company)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_create_wizard"
        )
        action["context"] = {"default_sponsor_id": self.commercial_partner_id.id}
        return action

    def action_unlock_lifecycle_stage(self):
        """Unlocked, the contact takes the stage of its criteria at once,
        even a lower one: the days before moving down count lapses, not a
        manual move undone."""
        self.write({"lifecycle_stage_locked": False})
        self.with_context(lifecycle_move_down_now=True)._lifecycle_recompute()

    def action_view_followups(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_partner_followup_log"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {}
        return action

    def action_regenerate_referral_code(self):
        """A new code for each contact (the change is tracked in its
        chatter); the old one is retired: it stops working and is never
        given to another contact."""
        self._check_referral_code_manager()
        self._retire_referral_codes()
        codes = self._generate_free_referral_codes(len(self))
        with action_flow():
            for partner, code in zip(self, codes, strict=True):
                partner.referral_code = code

    # ------------------------------------------------------------------
    # Referral codes
    # ------------------------------------------------------------------

    def _check_referral_code_manager(self):
        if not self.env.user.has_group(REVIEW_MANAGER_GROUP):
            raise AccessError(
                self.env._("Only sales administrators can change a referral code.")
            )

    def _retire_referral_codes(self):
        """Reserve the current referral codes of these contacts for good:
        their links stop working and no other contact will ever get them.
        Called when a code is replaced or its contact deleted; contact
        merges call it for the contacts they absorb."""
        # sudo: the register of retired codes is kept whoever replaces or
        # deletes a contact.
        self.env["referral.retired.code"].sudo()._retire(
            {partner: partner.referral_code for partner in self.sudo()}
        )

    @api.model
    def _generate_free_referral_codes(self, count):
        """``count`` new distinct codes, none of them retired (one query,
        again for the rare code drawn that was retired)."""
        Retired = self.env["referral.retired.code"].sudo()
        codes = []
        while len(codes) < count:
            drawn = {generate_referral_code() for _i in range(count - len(codes))}
            codes += sorted(drawn - Retired._get_retired(drawn) - set(codes))
        return codes

    def _replace_retired_referral_codes(self):
        """Give a new code to those of these new contacts whose generated
        code happens to be a retired one (one query)."""
        retired = (
            self.env["referral.retired.code"]
            .sudo()
            ._get_retired(self.mapped("referral_code"))
        )
        partners = self.filtered(lambda p: p.referral_code in retired)
        if partners:
            codes = self._generate_free_referral_codes(len(partners))
            with action_flow():
                for partner, code in zip(partners, codes, strict=True):
                    partner.referral_code = code

    @api.model
    def _prepare_referral_code_create_values(self, vals_list):
        """``vals_list`` with the codes given checked: a code is generated,
        or given by a Sales administrator (see ``_check_given_referral_code``);
        an empty one is generated."""
        if self.env.context.get("default_referral_code") and not in_action_flow():
            # A default is a code given to every contact created.
            self._check_referral_code_manager()
        given = [vals for vals in vals_list if "referral_code" in vals]
        if not given:
            return vals_list
        vals_list = [dict(vals) for vals in vals_list]
        for vals in vals_list:
            if "referral_code" not in vals:
                continue
            if not vals["referral_code"]:
                del vals["referral_code"]
                continue
            if not in_action_flow():
                self._check_referral_code_manager()
            vals["referral_code"] = self._check_given_referral_code(
                vals["referral_code"]
            )
        return vals_list

    def _prepare_referral_code_write_values(self, vals):
        """``vals`` with its referral code checked: unchanged (a client saving
        what it read), written by the addon's code generation, or given by a
        Sales administrator to one contact, its old code then retired."""
        code = vals["referral_code"]
        normalized = normalize_referral_code(code)
        changed = self.filtered(lambda p: p.referral_code != (normalized or code))
        if not changed or in_action_flow():
            return dict(vals, referral_code=normalized) if normalized else vals
        self._check_referral_code_manager()
        if len(changed) > 1:
            raise ValidationError(
                self.env._("A referral code belongs to one contact only.")
            )
        vals = dict(vals, referral_code=changed._check_given_referral_code(code))
        changed._retire_referral_codes()
        return vals

    def _check_given_referral_code(self, code):
        """The code a Sales administrator gives (to these contacts, or to a
        new one), normalised; refused when it cannot be a code or when it was
        retired from another contact."""
        normalized = normalize_referral_code(code)
        if not normalized or len(normalized) < CODE_MIN_LENGTH:
            raise ValidationError(
                self.env._(
                    "A referral code has %(min)s to %(max)s letters and digits "
                    "(spaces are ignored).",
                    min=CODE_MIN_LENGTH,
                    max=CODE_MAX_LENGTH,
                )
            )
        if (
            self.env["referral.retired.code"]
            .sudo()
            ._get_retired([normalized], holders=self)
        ):
            raise ValidationError(
                self.env._(
                    "The referral code %(code)s was used by another contact: a "
                    "code is never given to another contact, choose another one.",
                    code=normalized,
                )
            )
        return normalized

    @api.model
    def _find_by_referral_code(self, codes, with_contacts=None):
        """Return ``{normalised code: commercial partner}`` for the given
        codes, as typed (``normalize_referral_code``). ``with_contacts``:
        active contacts read in the same query (the customers of the orders
        whose codes these are, the author of the messages to come)."""
        codes = {normalize_referral_code(code) for code in codes} - {""}
        if not codes:
            return {}
        domain = [("referral_code", "in", list(codes))]
        if with_contacts:
            domain = ["|", ("id", "in", with_contacts.ids), *domain]
        # With what the referral created from the code reads of its sponsor
        # and referee (archived or not, company, salesperson, own sponsor):
        # no second read.
        partners = self.search_fetch(
            domain,
            [
                "referral_code",
                "commercial_partner_id",
                "active",
                "company_id",
                "user_id",
                "sponsor_id",
                # The sender of a message (email_formatted).
                "name",
                "email",
            ],
        )
        return {
            partner.referral_code: partner.commercial_partner_id
            for partner in partners
            if partner.referral_code in codes
        }

    def _fill_missing_referral_codes(self):
        """Give a code to the contacts that have none, in one query per
        batch (install on a database that already has contacts)."""
        cr = self.env.cr
        cr.execute("SELECT id FROM res_partner WHERE referral_code IS NULL")
        ids = [row[0] for row in cr.fetchall()]
        for start in range(0, len(ids), 10000):
            batch = ids[start : start + 10000]
            cr.execute(
                """
                UPDATE res_partner p SET referral_code = v.code
                  FROM unnest(%s::int[], %s::varchar[]) AS v(id, code)
                 WHERE p.id = v.id
                """,
                [batch, [generate_referral_code() for _i in batch]],
            )
        self.invalidate_model(["referral_code"])

    # ------------------------------------------------------------------
    # Sponsoring and customers
    # ------------------------------------------------------------------

    def _route_referees(self, user, company, source, untracked=None):
        """Route these referees as a new referral does, in one statement:
        ``user`` (if any) becomes the salesperson of those of them and of
        their active contact persons that have none; in ``company``, the
        referees with no first contact get today and ``source``, those with
        a first contact but no channel get ``source``. The ORM's write
        would read every tracked field of each contact, its contact persons
        and its users' rights, in several queries. What it does for a new
        salesperson is kept: the change tracked in the chatter (posted at
        commit, as Odoo's tracking does), the salesperson following the
        contacts, the fields depending on these ones recomputed. The
        ``untracked`` contacts and their contact persons (created with the
        referral: born with their salesperson) get no tracked change."""
        if not self:
            return
        partners = self.sudo()
        fnames = ["user_id", "first_contact_date", "first_contact_source_id"]
        partners.flush_model([*fnames, "parent_id", "active"])
        key = str(company.id)
        rows = self.env.execute_query(
            SQL(
                """
                WITH today AS (
                    -- Today in the company, as company_today() tells it.
                    SELECT (%(now)s::timestamp AT TIME ZONE 'UTC'
                            AT TIME ZONE z.tz)::date::text AS day
                      FROM (%(zones)s) z
                     WHERE z.company_id = %(company)s
                ), target AS (
                    SELECT p.id,
                           p.user_id IS NULL AND %(user)s IS NOT NULL AS routed,
                           p.id = ANY(%(ids)s)
                               AND p.first_contact_date->>%(key)s IS NULL AS dated,
                           p.id = ANY(%(ids)s) AND (
                               p.first_contact_date->>%(key)s IS NULL
                               OR p.first_contact_source_id->>%(key)s IS NULL
                           ) AS channelled
                      FROM res_partner p
                     WHERE p.id = ANY(%(ids)s)
                        OR (p.parent_id = ANY(%(ids)s) AND p.active)
                )
                UPDATE res_partner p
                   SET user_id = CASE WHEN t.routed THEN %(user)s ELSE p.user_id END,
                       first_contact_date = CASE WHEN t.dated
                           THEN COALESCE(p.first_contact_date, '{}'::jsonb)
                                || jsonb_build_object(%(key)s, today.day)
                           ELSE p.first_contact_date END,
                       first_contact_source_id = CASE WHEN t.channelled
                           THEN COALESCE(p.first_contact_source_id, '{}'::jsonb)
                                || jsonb_build_object(%(key)s, %(source)s::int)
                           ELSE p.first_contact_source_id END,
                       write_uid = %(uid)s,
                       write_date = (now() AT TIME ZONE 'UTC')
                  FROM target t, today
                 WHERE p.id = t.id AND (t.routed OR t.dated OR t.channelled)
             RETURNING p.id, t.routed
                """,
                user=user.id or None,
                ids=self.ids,
                key=key,
                now=fields.Datetime.now(),
                zones=company_tz_sql(),
                company=company.id,
                source=source.id,
                uid=self.env.uid,
            )
        )
        if not rows:
            return
        written = partners.browse(sorted(row[0] for row in rows))
        routed = partners.browse(sorted(row[0] for row in rows if row[1]))
        written.invalidate_recordset([*fnames, "write_uid", "write_date"])
        if untracked:
            new = untracked | untracked.child_ids
            tracked = routed - new.with_env(routed.env)
        else:
            tracked = routed
        if tracked and "user_id" in tracked._track_get_fields():
            # Their salesperson was empty: the tracking's initial value, as
            # mail.thread's write records it.
            self.env.cr.precommit.add(tracked._track_finalize)
            initial = self.env.cr.precommit.data.setdefault(
                f"mail.tracking.{tracked._name}", {}
            )
            for partner_id in tracked.ids:
                values = initial.setdefault(partner_id, {})
                if values is not None:
                    values.setdefault("user_id", self.env["res.users"])
        written.modified(fnames)
        if routed:
            routed._message_auto_subscribe({"user_id": user.id})

    def _get_company_customers(self, company, exclude_orders=None):
        """The commercial entities of these contacts that are customers of
        ``company``: a confirmed sales order of ``company`` for the entity
        itself or one of its contact persons (a subsidiary company is its own
        commercial entity: its orders do not make its parent a customer).
        ``exclude_orders`` do not count. One query for all; the only reader
        of "is this company already a customer" (sponsoring, referees,
        welcome discount, portal)."""
        customers, held = self._read_company_customers(company, exclude_orders)
        return customers

    def _read_company_customers(self, company, exclude_orders=None):
        """``(customers, held)``: the commercial entities of these contacts
        that are customers of ``company`` without ``exclude_orders``
        (``_get_company_customers``), and ``{entity: ids of the confirmed
        orders among exclude_orders}``, for callers that count some of them
        (one read for several exclusions). The orders whose state, customer
        or company is not written yet (an order being confirmed) are read
        from the cache: no flush of the orders."""
        entities = self.commercial_partner_id
        if not entities:
            return entities, {}
        Order = self.env["sale.order"]
        pending = Order.browse(
            {
                order_id
                for fname in ("partner_id", "company_id", "state")
                for order_id in self.env.cache.get_dirty_records(
                    Order, Order._fields[fname]
                )._ids
            }
        )
        self.env["res.partner"].flush_model(["commercial_partner_id"])
        excluded = list(exclude_orders.ids if exclude_orders else [])
        rows = self.env.execute_query(
            SQL(
                """
                SELECT p.commercial_partner_id,
                       bool_or(so.id != ALL(%(excluded)s)),
                       array_agg(so.id) FILTER (WHERE so.id = ANY(%(excluded)s))
                  FROM sale_order so
                  JOIN res_partner p ON p.id = so.partner_id
                 WHERE p.commercial_partner_id = ANY(%(entities)s)
                   AND so.company_id = %(company)s
                   AND so.state = 'sale'
                   AND so.id != ALL(%(pending)s)
                 GROUP BY p.commercial_partner_id
                """,
                excluded=excluded,
                entities=entities.ids,
                company=company.id,
                pending=list(pending._ids),
            )
        )
        customer_ids = {entity_id for entity_id, other, _held in rows if other}
        held = defaultdict(set)
        for entity_id, _other, held_ids in rows:
            held[entity_id].update(held_ids or ())
        for order in pending:
            entity = order.partner_id.commercial_partner_id
            if (
                entity in entities
                and order.company_id == company
                and order.state == "sale"
            ):
                if order.id in excluded:
                    held[entity.id].add(order.id)
                else:
                    customer_ids.add(entity.id)
        return (
            entities.browse(sorted(customer_ids)),
            {entities.browse(k): v for k, v in held.items() if v},
        )

    def _get_referral_sponsor_refusals(self, company):
        """``{commercial entity: reason}`` for those of these contacts that
        may not sponsor in ``company``."""
        program = self.env["referral.program"].sudo()._get_company_program(company)
        if not program:
            reason = self.env._(
                "%(company)s has no active referral program: create one in "
                "Sales > Configuration > Referral Programs.",
                company=company.display_name,
            )
            return dict.fromkeys(self.commercial_partner_id, reason)
        return program._get_sponsor_refusals(self)

    def _check_referral_sponsor(self, company):
        """Refuse clearly, before the Refer a Company wizard is filled in,
        a contact that may not sponsor in ``company``."""
        refusals = self._get_referral_sponsor_refusals(company)
        if refusals:
            raise UserError("\n".join(refusals.values()))

    def _referral_check_credit_binding(self, entities_before):
        """Contacts moved to another commercial entity: their confirmed
        orders give the former entity's credit back (the ledger's binding),
        and their quotations and draft invoices say that its credit will not
        be spent on them."""
        moved = self.filtered(
            lambda p: p in entities_before
            and p.commercial_partner_id != entities_before[p]
        )
        if not moved:
            return
        # sudo: the documents of a contact may belong to other salespeople.
        contacts = self.sudo().search([("id", "child_of", moved.ids)])
        orders = (
            self.env["sale.order"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", contacts.ids),
                    ("state", "in", ("draft", "sent", "sale")),
                    ("order_line.referral_credit_wallet_id", "!=", False),
                ]
            )
        )
        moves = (
            self.env["account.move"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", contacts.ids),
                    ("state", "=", "draft"),
                    ("move_type", "in", ("out_invoice", "out_refund")),
                    ("invoice_line_ids.referral_credit_wallet_id", "!=", False),
                ]
            )
        )
        Ledger = self.env["referral.ledger"]
        drafts = [*orders.filtered(lambda o: o.state != "sale"), *moves]
        for document in drafts:
            lines = document._referral_credit_document_lines().filtered(
                lambda ln: ln.referral_credit_wallet_id
                and not Ledger._is_bound(ln, ln.referral_credit_wallet_id)
            )
            if lines:
                document.message_post(
                    body=self.env._(
                        "The customer of this document is now %(customer)s: the "
                        "referral credit of %(wallets)s on it will not be spent. "
                        "Apply the credit again before confirming it.",
                        customer=document._referral_credit_partner().display_name,
                        wallets=", ".join(
                            lines.referral_credit_wallet_id.partner_id.mapped(
                                "display_name"
                            )
                        ),
                    )
                )
        confirmed = orders.filtered(lambda o: o.state == "sale")
        if confirmed:
            Ledger._sync(
                order_lines=confirmed.order_line.filtered("referral_credit_wallet_id")
            )

    # ------------------------------------------------------------------
    # Lifecycle stages
    # ------------------------------------------------------------------

    @api.model
    def _read_group_lifecycle_stage_ids(self, stages, domain):
        # Every stage is a kanban column, even empty; there are a handful.
        return stages.search([])  # pylint: disable=no-search-all

    def _prepare_lifecycle_history_values(self, stage_id, automatic):
        """A history row each, in the current company (the stage moved is
        this company's)."""
        return [
            {
                "partner_id": partner.id,
                "from_stage_id": partner.lifecycle_stage_id.id,
                "to_stage_id": stage_id,
                "automatic": automatic,
                "user_id": self.env.uid,
                "company_id": self.env.company.id,
                "first_contact_source_id": partner.first_contact_source_id.id,
            }
            for partner in self
        ]

    @api.depends(
        "lifecycle_stage_id",
        "lifecycle_stage_locked",
        "lifecycle_quotation_count",
        "lifecycle_order_count",
        "lifecycle_last_order_date",
        "subscription_end_date",
        "lifecycle_first_order_date",
        "lifecycle_renewal_count",
        "lifecycle_referral_count",
        "lifecycle_referral_won_count",
        "lifecycle_paid_on_time_rate",
        "lifecycle_window_figures",
        "lifecycle_down_since",
    )
    @api.depends_context("company")
    def _compute_lifecycle_why(self):
        """Why a contact sits in its stage, in the current company: the
        criteria of its stage it meets with its figures, the next stage and
        what it lacks, and a move down that waits. Read from the figures the
        engine stores and the stages' criteria: the same queries for a page
        of contacts as for one (the stages, and a search per stage with
        extra conditions)."""
        Stage = self.env["partner.lifecycle.stage"]
        # sudo: as the engine, the criteria apply whoever reads them.
        stages = Stage.sudo().search([])._get_lifecycle_criteria()  # pylint: disable=no-search-all
        by_id = {stage.id: rank for rank, stage in enumerate(stages)}
        company = self.env.company
        today = company_today(company)
        now = fields.Datetime.now()
        in_domain = self._lifecycle_in_stage_domains(stages)
        for partner in self:
            partner.update(
                partner._prepare_lifecycle_why(
                    stages, by_id, company, today, now, in_domain
                )
            )

    def _lifecycle_in_stage_domains(self, stages):
        """``{stage id: ids of these contacts matching its extra
        conditions}``, for the stages that have some: a search each."""
        ids = [pid for pid in self.ids if pid]
        if not ids:
            return {}
        Partner = self.env["res.partner"].with_context(active_test=False)
        return {
            stage.id: set(
                Partner.search(stage.partner_domain + [("id", "in", ids)]).ids
            )
            for stage in stages
            if stage.partner_domain
        }

    def _lifecycle_stats(self, company, today):
        """The stored figures of this contact in the current company, shaped
        as the engine's stats (``partner.lifecycle.engine._read_stats``)."""
        self.ensure_one()
        orders_in, revenue_in = self.env["partner.lifecycle.engine"]._window_figures(
            self.lifecycle_window_figures
        )
        return {
            "id": self.id,
            "company_id": company.id,
            "today": today,
            "quotation_count": self.lifecycle_quotation_count,
            "order_count": self.lifecycle_order_count,
            "last_order_date": self.lifecycle_last_order_date,
            "subscription_end_date": self.subscription_end_date,
            "first_order_day": self.lifecycle_first_order_date,
            "renewal_count": self.lifecycle_renewal_count,
            "referral_count": self.lifecycle_referral_count,
            "referral_won_count": self.lifecycle_referral_won_count,
            "paid_on_time_rate": self.lifecycle_paid_on_time_rate,
            "orders_in": orders_in,
            "revenue_in": revenue_in,
        }

    def _prepare_lifecycle_why(self, stages, ranks, company, today, now, in_domain):
        """Values of the *Why this stage* fields of this contact (see
        ``_compute_lifecycle_why``)."""
        self.ensure_one()
        Stage = self.env["partner.lifecycle.stage"]
        values = {
            "lifecycle_criteria_met": False,
            "lifecycle_next_stage_id": False,
            "lifecycle_next_stage_missing": False,
            "lifecycle_down_date": False,
            "lifecycle_down_warning": False,
        }
        rank = ranks.get(self.lifecycle_stage_id.id)
        if rank is None:
            return values
        stats = self._lifecycle_stats(company, today)
        currency = company.currency_id
        current = stages[rank]
        checks = list(current.checks(stats, now))
        values["lifecycle_criteria_met"] = (
            "\n".join(
                Stage._lifecycle_check_text(check, currency)
                for check in checks
                if check.met
            )
            or False
        )
        following = next(
            (
                stage
                for stage in reversed(stages[:rank])
                if stage.applies_to(company.id)
            ),
            None,
        )
        if following:
            missing = [
                Stage._lifecycle_check_text(check, currency)
                for check in following.checks(stats, now)
                if not check.met
            ]
            if following.partner_domain and self.id not in in_domain.get(
                following.id, ()
            ):
                missing.append(self.env._("matches the extra conditions"))
            values["lifecycle_next_stage_id"] = following.id
            values["lifecycle_next_stage_missing"] = "\n".join(missing) or False
        if self.lifecycle_down_since and not self.lifecycle_stage_locked:
            down_date = (
                self.lifecycle_down_since
                + relativedelta(days=current.min_days_before_down)
            ).date()
            lapsed = [
                Stage._lifecycle_check_text(check, currency)
                for check in checks
                if not check.met
            ]
            values["lifecycle_down_date"] = down_date
            values["lifecycle_down_warning"] = self.env._(
                "Leaves %(stage)s on %(date)s unless: %(missing)s",
                stage=current.name,
                date=format_date(self.env, down_date),
                missing="; ".join(lapsed) or self.env._("its criteria hold again"),
            )
        return values

    def _lifecycle_recompute(self):
        """Move the commercial entities of these contacts to the stage their
        aggregates meet (see ``partner.lifecycle.engine``)."""
        self.env["partner.lifecycle.engine"]._recompute(self)

    @api.model
    def _cron_recompute_lifecycle_stages(self, batch_size=5000):
        """Kept for the scheduled action of databases installed before the
        engine had its own model (its record is ``noupdate``)."""
        return self.env["partner.lifecycle.engine"]._cron_recompute(batch_size)

    # ------------------------------------------------------------------
    # Public referral link
    # ------------------------------------------------------------------

    def _get_referral_share_url(self):
        """The public link of this contact's referral code."""
        self.ensure_one()
        base_url = self.get_base_url()
        return f"{base_url}/r/{self.commercial_partner_id.referral_code}"

    @api.model
    def _portal_find_link_sponsor(self, code):
        """The active commercial entity whose referral code is ``code``, if
        any (archived contacts are not found)."""
        code = normalize_referral_code(code)
        if not code:
            return self.browse()
        partner = self.search([("referral_code", "=", code)], limit=1)
        sponsor = partner.commercial_partner_id
        return sponsor if sponsor.active else self.browse()

    # ------------------------------------------------------------------
    # First contact
    # ------------------------------------------------------------------

    @api.model
    def _is_commercial_entity_values(self, vals):
        """Whether a contact created with ``vals`` is its own commercial
        entity: a company (subsidiaries too) or a contact without parent."""
        return vals.get("is_company") or not vals.get("parent_id")

    @api.model
    def _prepare_first_contact_values(self, vals, channel):
        """``vals`` with the first contact's date (today in the company's
        time zone), source and medium (``channel``) when not given."""
        vals = dict(vals)
        if not vals.get("first_contact_date"):
            company = self.env["res.company"].browse(vals.get("company_id"))
            vals["first_contact_date"] = company_today(company or self.env.company)
        for field_name, value in channel.items():
            if value and not vals.get(field_name):
                vals[field_name] = value
        return vals

    @api.model
    def _get_first_contact_channel(self):
        """``{field: utm record id}`` of the channel that brings the contacts
        created now: the values in the context (``first_contact_source_id``,
        ``first_contact_medium_id``, or the utm ``source_id``/``medium_id``
        of the document creating them), else the utm cookies of the web
        request (a contact created from the portal or a public page)."""
        context = self.env.context
        channel = {
            "first_contact_source_id": context.get("default_first_contact_source_id")
            or context.get("default_source_id"),
            "first_contact_medium_id": context.get("default_first_contact_medium_id")
            or context.get("default_medium_id"),
        }
        if request and not all(channel.values()):
            Utm = self.env["utm.mixin"].sudo()
            for cookie, field_name, model in (
                ("odoo_utm_source", "first_contact_source_id", "utm.source"),
                ("odoo_utm_medium", "first_contact_medium_id", "utm.medium"),
            ):
                name = request.cookies.get(cookie)
                if name and not channel[field_name]:
                    # sudo: as utm.mixin's defaults, visitors name the channel.
                    channel[field_name] = Utm._find_or_create_record(model, name).id
        return channel
