# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import timedelta
from typing import NamedTuple

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
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

    def applies_to(self, company_id):
        """Whether the stage applies to a contact of ``company_id``."""
        return not self.company_id or self.company_id == company_id

    def match(self, stats, now, in_domain):
        """Return whether a contact with aggregates ``stats`` (see
        ``partner.lifecycle.engine._read_stats``) meets all the criteria.
        ``in_domain``: whether it matches the extra conditions."""
        last_order = stats["last_order_date"]
        subscription_end = stats["subscription_end_date"]
        return (
            in_domain
            and stats["quotation_count"] >= self.min_quotation_count
            and stats["order_count"] >= self.min_order_count
            and (
                not self.min_recent_order_count
                or stats["orders_in"].get(self.recent_order_months, 0)
                >= self.min_recent_order_count
            )
            and (
                not self.min_revenue
                or stats["revenue_in"].get(self.revenue_months, 0.0) >= self.min_revenue
            )
            and (
                not self.max_days_since_last_order
                or (
                    last_order
                    and now - last_order
                    <= timedelta(days=self.max_days_since_last_order)
                )
            )
            and (
                not self.require_active_subscription
                or (subscription_end and subscription_end >= stats["today"])
            )
        )


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
    partner_count = fields.Integer(compute="_compute_partner_count", string="Contacts")
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
            )
            if any(value < 0 for value in minimums):
                raise ValidationError(
                    self.env._(
                        "Stage %(stage)s: minimums and maximums cannot be negative.",
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
            )
            for stage in stages
        ]
