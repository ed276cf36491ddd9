# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import timedelta
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_amount, format_date
from odoo.tools.safe_eval import safe_eval

from .partner_lifecycle_engine import COMMERCIAL_ENTITY_DOMAIN, RECOMPUTE_CRON

# Changing them moves contacts: the stages are recomputed at once.
CRITERIA_FIELDS = {
    "active",
    "sequence",
    "company_id",
    "min_quotation_count",
    "min_order_count",
    "min_recent_order_count",
    "recent_order_months",
    "min_revenue",
    "revenue_months",
    "max_days_since_last_order",
    "require_active_subscription",
    "partner_domain",
    "min_referral_count",
    "min_referral_won_count",
    "min_paid_on_time_rate",
    "min_tenure_months",
    "min_renewal_count",
    "min_days_before_down",
}


class StageCriteria(NamedTuple):
    """The criteria of one stage (see ``_get_lifecycle_criteria``)."""

    id: int
    name: str
    company_id: int | None
    min_quotation_count: int
    min_order_count: int
    min_recent_order_count: int
    recent_order_months: int
    min_revenue: float
    revenue_months: int
    max_days_since_last_order: int
    require_active_subscription: bool
    partner_domain: list
    min_referral_count: int = 0
    min_referral_won_count: int = 0
    min_paid_on_time_rate: int = 0
    min_tenure_months: int = 0
    min_renewal_count: int = 0
    min_days_before_down: int = 0

    def applies_to(self, company_id):
        """Whether the stage applies to a contact of ``company_id``."""
        return not self.company_id or self.company_id == company_id

    def match(self, stats, now, in_domain):
        """Return whether a contact with aggregates ``stats`` (see
        ``partner.lifecycle.engine._read_stats``) meets all the criteria.
        ``in_domain``: whether it matches the extra conditions."""
        return in_domain and all(check.met for check in self.checks(stats, now))

    def checks(self, stats, now):
        """The criteria this stage sets, one ``CriterionCheck`` each, in the
        order of the stage form, lazily: ``match`` stops at the first one
        not met; the contact's *Why this stage* reads them all (the extra
        conditions are not among them: they are a search)."""
        if self.min_quotation_count:
            yield at_least(
                "quotations", stats["quotation_count"], self.min_quotation_count
            )
        if self.min_order_count:
            yield at_least("orders", stats["order_count"], self.min_order_count)
        if self.min_recent_order_count:
            yield at_least(
                "recent_orders",
                stats["orders_in"].get(self.recent_order_months, 0),
                self.min_recent_order_count,
                self.recent_order_months,
            )
        if self.min_revenue:
            yield at_least(
                "revenue",
                stats["revenue_in"].get(self.revenue_months, 0.0),
                self.min_revenue,
                self.revenue_months,
            )
        if self.max_days_since_last_order:
            last_order = stats["last_order_date"]
            days = (now - last_order).days if last_order else None
            yield CriterionCheck(
                "last_order", days, self.max_days_since_last_order, 0,
                bool(
                    last_order
                    and now - last_order
                    <= timedelta(days=self.max_days_since_last_order)
                ),
            )  # fmt: skip
        if self.require_active_subscription:
            end = stats["subscription_end_date"]
            yield CriterionCheck(
                "subscription", end, True, 0, bool(end and end >= stats["today"])
            )
        if self.min_referral_count:
            yield at_least(
                "referrals", stats["referral_count"], self.min_referral_count
            )
        if self.min_referral_won_count:
            yield at_least(
                "referrals_won",
                stats["referral_won_count"],
                self.min_referral_won_count,
            )
        if self.min_paid_on_time_rate:
            yield at_least(
                "paid_on_time", stats["paid_on_time_rate"], self.min_paid_on_time_rate
            )
        if self.min_tenure_months:
            yield at_least(
                "tenure",
                tenure_months(stats["first_order_day"], stats["today"]),
                self.min_tenure_months,
            )
        if self.min_renewal_count:
            yield at_least("renewals", stats["renewal_count"], self.min_renewal_count)


class CriterionCheck(NamedTuple):
    """One criterion of a stage applied to a contact: its ``key``, the
    contact's ``value``, the stage's ``required`` value, the time window in
    ``months`` when it has one, and whether it is ``met``."""

    key: str
    value: object
    required: object
    months: int
    met: bool


def at_least(key, value, required, months=0):
    """The check of a criterion met from ``required`` up (a count, an
    amount, a share, a number of months); ``value`` None: not met."""
    return CriterionCheck(
        key, value, required, months, value is not None and value >= required
    )


def tenure_months(first_order_day, today):
    """Whole months from the first confirmed order's day to ``today``, or
    None without an order."""
    if not first_order_day:
        return None
    delta = relativedelta(today, first_order_day)
    return max(0, delta.years * 12 + delta.months)


class PartnerLifecycleStage(models.Model):
    _name = "partner.lifecycle.stage"
    _description = "Customer Lifecycle Stage"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(
        default=10,
        help="A contact sits in the stage with the highest sequence whose "
        "criteria all hold.",
    )
    description = fields.Text(translate=True)
    fold = fields.Boolean(string="Folded in Kanban")
    active = fields.Boolean(default=True)
    color = fields.Integer()
    min_quotation_count = fields.Integer(
        string="Minimum Quotations Received",
        help="Quotations sent to the contact (confirmed orders included).",
    )
    min_order_count = fields.Integer(string="Minimum Confirmed Orders")
    min_recent_order_count = fields.Integer(
        string="Minimum Recent Orders",
        help="Confirmed orders within the last months set beside.",
    )
    recent_order_months = fields.Integer(string="Recent Orders Window", default=12)
    min_revenue = fields.Monetary(
        string="Minimum Revenue",
        currency_field="currency_id",
        help="Untaxed amount of the confirmed orders within the last months "
        "set beside, in the currency of each order's company.",
    )
    revenue_months = fields.Integer(string="Revenue Window", default=12)
    max_days_since_last_order = fields.Integer(
        string="Maximum Days Since Last Order",
        help="0 means no limit.",
    )
    require_active_subscription = fields.Boolean(
        help="The contact's subscription must run today or later."
    )
    partner_domain = fields.Char(
        string="Extra Conditions",
        default="[]",
        help="Contacts must also match this filter.",
    )
    min_referral_count = fields.Integer(
        string="Minimum Referrals Brought",
        help="Referrals the contact brought in this company that were accepted "
        "(new, in progress, won or rewarded: not lost, refused or held for "
        "review).",
    )
    min_referral_won_count = fields.Integer(
        string="Minimum Referrals Won",
        help="Referrals the contact brought whose referee ordered (won or "
        "rewarded).",
    )
    min_paid_on_time_rate = fields.Integer(
        string="Minimum Invoices Paid on Time (%)",
        help="Share of the contact's customer invoices of this company paid by "
        "their due date, among those paid or overdue (invoices not yet due "
        "and reversed ones are left out). 0: no condition.",
    )
    min_tenure_months = fields.Integer(
        string="Minimum Customer Tenure (months)",
        help="Months since the contact's first confirmed order in this company.",
    )
    min_renewal_count = fields.Integer(
        string="Minimum Renewals",
        help="Confirmed renewal orders (subscription orders of a customer who "
        "already had a subscription).",
    )
    min_days_before_down = fields.Integer(
        string="Days Before Moving Down",
        default=30,
        help="A contact whose criteria lapse stays in this stage this many days "
        "before moving down automatically; if its criteria hold again "
        "meanwhile, it does not move. 0: moves down at once. Companies set "
        "to move contacts only forward never move them down.",
    )
    partner_count = fields.Integer(compute="_compute_partner_count", string="Contacts")
    dry_run_summary = fields.Char(
        string="If Saved",
        compute="_compute_dry_run_summary",
        help="How many contacts of the current company would enter and leave "
        "this stage with the criteria being edited, before saving them.",
    )
    currency_id = fields.Many2one("res.currency", compute="_compute_currency_id")
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Leave empty to use the stage in every company.",
    )

    @api.constrains(
        "recent_order_months",
        "revenue_months",
        "min_quotation_count",
        "min_order_count",
        "min_recent_order_count",
        "min_revenue",
        "max_days_since_last_order",
        "min_referral_count",
        "min_referral_won_count",
        "min_paid_on_time_rate",
        "min_tenure_months",
        "min_renewal_count",
        "min_days_before_down",
    )
    def _check_criteria_values(self):
        for stage in self:
            if stage.recent_order_months <= 0 or stage.revenue_months <= 0:
                raise ValidationError(
                    self.env._(
                        "Stage %(stage)s: time windows are counted in months "
                        "and must be at least 1.",
                        stage=stage.name,
                    )
                )
            minimums = (
                stage.min_quotation_count,
                stage.min_order_count,
                stage.min_recent_order_count,
                stage.min_revenue,
                stage.max_days_since_last_order,
                stage.min_referral_count,
                stage.min_referral_won_count,
                stage.min_paid_on_time_rate,
                stage.min_tenure_months,
                stage.min_renewal_count,
                stage.min_days_before_down,
            )
            if any(value < 0 for value in minimums):
                raise ValidationError(
                    self.env._(
                        "Stage %(stage)s: minimums and maximums cannot be negative.",
                        stage=stage.name,
                    )
                )
            if stage.min_paid_on_time_rate > 100:
                raise ValidationError(
                    self.env._(
                        "Stage %(stage)s: the share of invoices paid on time is a "
                        "percentage, at most 100.",
                        stage=stage.name,
                    )
                )

    @api.depends("company_id")
    @api.depends_context("company")
    def _compute_partner_count(self):
        """Contacts in each stage in the current company."""
        counts = dict(
            self.env["res.partner"]._read_group(
                [("lifecycle_stage_id", "in", self.ids)],
                ["lifecycle_stage_id"],
                ["__count"],
            )
        )
        for stage in self:
            stage.partner_count = counts.get(stage, 0)

    @api.depends(*CRITERIA_FIELDS - {"active"})
    @api.depends_context("company")
    def _compute_dry_run_summary(self):
        """While criteria are being edited (the form's onchange), the
        engine's dry run on the current company: how many contacts would
        enter and leave the stage once saved. Nothing when the criteria are
        those saved."""
        Engine = self.env["partner.lifecycle.engine"]
        # Counts over every contact of the company: for those who edit the
        # stages only.
        manager = self.env.user.has_group("sales_team.group_sale_manager")
        for stage in self:
            summary = False
            if manager and stage._criteria_edited():
                entering, leaving = Engine._dry_run(stage)
                summary = self.env._(
                    "Once saved, in %(company)s: %(entering)s contacts enter this "
                    "stage, %(leaving)s leave it.",
                    company=self.env.company.name,
                    entering=entering,
                    leaving=leaving,
                )
            stage.dry_run_summary = summary

    def _criteria_edited(self):
        """Whether this stage, being edited in a form, has criteria other
        than those saved (or is a new stage with criteria)."""
        self.ensure_one()
        if isinstance(self.id, int):
            return False
        origin = self._origin
        if not origin:
            return True
        return (
            any(self[name] != origin[name] for name in CRITERIA_FIELDS - {"company_id"})
            or self.company_id.id != origin.company_id.id
        )

    @api.depends("company_id")
    def _compute_currency_id(self):
        for stage in self:
            stage.currency_id = (stage.company_id or self.env.company).currency_id

    @api.constrains("partner_domain")
    def _check_partner_domain(self):
        for stage in self:
            try:
                domain = stage._get_partner_domain()
                self.env["res.partner"].search_count(domain, limit=1)
            except Exception as error:
                raise ValidationError(
                    self.env._(
                        "The extra conditions of the stage %(stage)s are not a "
                        "valid filter on contacts: %(error)s",
                        stage=stage.name,
                        error=error,
                    )
                ) from error

    @api.model_create_multi
    def create(self, vals_list):
        stages = super().create(vals_list)
        stages._schedule_lifecycle_recompute()
        return stages

    def write(self, vals):
        res = super().write(vals)
        if CRITERIA_FIELDS & vals.keys():
            self._schedule_lifecycle_recompute()
        return res

    def action_recompute_now(self):
        """Recompute every contact's stage now, in the background: the
        nightly job runs at once from the first contact, in batches."""
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise UserError(
                self.env._("Only sales administrators can recompute the stages.")
            )
        cron = self.env.ref(RECOMPUTE_CRON, raise_if_not_found=False)
        if not cron or not cron.sudo().active:
            raise UserError(
                self.env._(
                    "The scheduled action that recomputes the stages is archived "
                    "or deleted: restore Customer lifecycle: recompute stages in "
                    "Settings > Technical > Scheduled Actions first."
                )
            )
        self._schedule_lifecycle_recompute()
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "info",
                "title": self.env._("Recomputing the stages"),
                "message": self.env._(
                    "The stages of %(count)s contacts are being recomputed in the "
                    "background, in batches: contacts move within minutes.",
                    count=self.env["res.partner"]
                    .with_context(active_test=False)
                    .search_count(COMMERCIAL_ENTITY_DOMAIN),
                ),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }

    @api.model
    def _schedule_lifecycle_recompute(self):
        """Run the recompute job now from the first contact: it goes on in
        batches (``ir.cron._notify_progress``) until every contact is done.
        When the job was archived, its next run makes that full pass."""
        self.env["partner.lifecycle.engine"]._lifecycle_cron_request_full()
        cron = self.env.ref(RECOMPUTE_CRON, raise_if_not_found=False)
        if not cron or not cron.sudo().active:
            return
        # sudo: the stages' managers run the job; they do not manage
        # scheduled actions.
        cron.sudo()._trigger()

    @api.model
    def _lifecycle_check_text(self, check, currency):
        """What a criterion check (``CriterionCheck``) says on a contact:
        the contact's figure when met ("3 orders in the last 12 months"),
        what is missing otherwise ("1 more order within 12 months"); one
        ``_lifecycle_text_<key>`` method per criterion."""
        more = (
            check.required - check.value
            if isinstance(check.value, int | float)
            else None
        )
        return getattr(self, f"_lifecycle_text_{check.key}")(check, more, currency)

    def _lifecycle_text_quotations(self, check, more, currency):
        if check.met and check.value == 1:
            return self.env._("1 quotation received")
        if check.met:
            return self.env._("%(count)s quotations received", count=check.value)
        if more == 1:
            return self.env._("1 more quotation received")
        return self.env._("%(count)s more quotations received", count=more)

    def _lifecycle_text_orders(self, check, more, currency):
        if check.met and check.value == 1:
            return self.env._("1 confirmed order")
        if check.met:
            return self.env._("%(count)s confirmed orders", count=check.value)
        if more == 1:
            return self.env._("1 more confirmed order")
        return self.env._("%(count)s more confirmed orders", count=more)

    def _lifecycle_text_recent_orders(self, check, more, currency):
        if check.met and check.value == 1:
            return self.env._(
                "1 order in the last %(months)s months", months=check.months
            )
        if check.met:
            return self.env._(
                "%(count)s orders in the last %(months)s months",
                count=check.value,
                months=check.months,
            )
        if more == 1:
            return self.env._(
                "1 more order within %(months)s months", months=check.months
            )
        return self.env._(
            "%(count)s more orders within %(months)s months",
            count=more,
            months=check.months,
        )

    def _lifecycle_text_revenue(self, check, more, currency):
        if check.met:
            return self.env._(
                "%(amount)s revenue in the last %(months)s months",
                amount=format_amount(self.env, check.value, currency),
                months=check.months,
            )
        return self.env._(
            "%(amount)s more revenue within %(months)s months",
            amount=format_amount(self.env, more, currency),
            months=check.months,
        )

    def _lifecycle_text_last_order(self, check, more, currency):
        if check.met:
            return self.env._("last order %(days)s days ago", days=check.value)
        return self.env._("an order within %(days)s days", days=check.required)

    def _lifecycle_text_subscription(self, check, more, currency):
        if check.met:
            return self.env._(
                "subscription running until %(date)s",
                date=format_date(self.env, check.value),
            )
        return self.env._("a running subscription")

    def _lifecycle_text_referrals(self, check, more, currency):
        if check.met and check.value == 1:
            return self.env._("1 referral brought")
        if check.met:
            return self.env._("%(count)s referrals brought", count=check.value)
        if not check.value and check.required == 1:
            return self.env._("a referral brought")
        return self.env._("%(count)s more referrals brought", count=more)

    def _lifecycle_text_referrals_won(self, check, more, currency):
        if check.met and check.value == 1:
            return self.env._("1 referral won")
        if check.met:
            return self.env._("%(count)s referrals won", count=check.value)
        if not check.value and check.required == 1:
            return self.env._("a referral won")
        return self.env._("%(count)s more referrals won", count=more)

    def _lifecycle_text_paid_on_time(self, check, more, currency):
        if check.met:
            return self.env._("%(rate)s%% of invoices paid on time", rate=check.value)
        if check.value is None:
            return self.env._(
                "%(rate)s%% of invoices paid on time (none paid or due yet)",
                rate=check.required,
            )
        return self.env._(
            "%(rate)s%% of invoices paid on time (now %(now)s%%)",
            rate=check.required,
            now=check.value,
        )

    def _lifecycle_text_tenure(self, check, more, currency):
        if check.met:
            return self.env._("customer for %(months)s months", months=check.value)
        if check.value is None:
            return self.env._(
                "a first order, then %(months)s months", months=check.required
            )
        return self.env._("%(months)s more months as a customer", months=more)

    def _lifecycle_text_renewals(self, check, more, currency):
        if check.met and check.value == 1:
            return self.env._("1 renewal confirmed")
        if check.met:
            return self.env._("%(count)s renewals confirmed", count=check.value)
        if not check.value and check.required == 1:
            return self.env._("a renewal confirmed")
        return self.env._("%(count)s more renewals confirmed", count=more)

    def _get_partner_domain(self):
        self.ensure_one()
        return safe_eval(self.partner_domain or "[]")

    def _get_lifecycle_criteria(self):
        """The criteria of these stages as plain tuples, highest sequence
        first: matching thousands of contacts on them costs no ORM access."""
        stages = self.sorted(lambda s: (s.sequence, s.id), reverse=True)
        return [
            StageCriteria(
                id=stage.id,
                name=stage.display_name,
                company_id=stage.company_id.id or None,
                min_quotation_count=stage.min_quotation_count,
                min_order_count=stage.min_order_count,
                min_recent_order_count=stage.min_recent_order_count,
                recent_order_months=stage.recent_order_months,
                min_revenue=stage.min_revenue,
                revenue_months=stage.revenue_months,
                max_days_since_last_order=stage.max_days_since_last_order,
                require_active_subscription=stage.require_active_subscription,
                partner_domain=stage._get_partner_domain(),
                min_referral_count=stage.min_referral_count,
                min_referral_won_count=stage.min_referral_won_count,
                min_paid_on_time_rate=stage.min_paid_on_time_rate,
                min_tenure_months=stage.min_tenure_months,
                min_renewal_count=stage.min_renewal_count,
                min_days_before_down=stage.min_days_before_down,
            )
            for stage in stages
        ]
