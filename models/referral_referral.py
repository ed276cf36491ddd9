# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


from contextlib import nullcontext

from odoo import api, fields, models
from odoo.exceptions import UserError

# A referee has at most one referral in these states per company (a
# referral held for review, see referral_fraud.py, counts: it blocks a
# second one); only the accepted ones bring the referee its welcome.
ACCEPTED_STATES = ("new", "in_progress", "won", "rewarded")
ACTIVE_STATES = (*ACCEPTED_STATES, "to_review")
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
        # refused referral, even when the caller catches the error. Without
        # raw details (a code typed on an order) nothing needs undoing: no
        # savepoint, whose flush would run the pending tracking and commit
        # hooks inside the order confirmation.
        resolving = any(not vals.get("referee_id") for vals in vals_list)
        with self.env.cr.savepoint() if resolving else nullcontext():
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
    # Sales
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
                referral.write({"state": "won", "first_order_id": order.id})
            if order and order.referral_id != referral:
                order.referral_id = referral
