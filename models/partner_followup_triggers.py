# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What the sources tell the engine as they change: wake the cron when
steps will fall due, log the plan a new referral launched itself, cancel
the follow-up activities a closed source no longer needs."""

from odoo import api, fields, models

from .partner_followup_engine import Decision, DueStep
from .partner_followup_working_days import FollowupWorkingDays


# The engine is split by concern (detection, execution, source hooks), each
# file under 400 lines, as the code map asks.
# pylint: disable=consider-merging-classes-inherited
class PartnerFollowupEngine(models.AbstractModel):
    _inherit = "partner.followup.engine"

    # ------------------------------------------------------------------
    # Cron triggers
    # ------------------------------------------------------------------

    @api.model
    def _schedule_cron(self, rules, company, reference_date):
        """Wake the cron when the first steps of ``rules`` counted from
        ``reference_date`` fall due, rather than the next night."""
        cron = self.env.ref(
            "sale_referral_lifecycle.ir_cron_partner_followup",
            raise_if_not_found=False,
        )
        if not cron or not rules:
            return
        days = FollowupWorkingDays(company, fields.Datetime.now())
        moments = set()
        for rule in rules:
            for step in rule._get_steps():
                if step.delay < 0:
                    continue
                day = days.shift(
                    reference_date, step.delay, rule.delay_type == "working"
                )
                moments.add(
                    fields.Datetime.now()
                    if day <= days.today
                    else days.datetime_at(day)
                )
        if moments:
            cron.sudo()._trigger(sorted(moments))

    # ------------------------------------------------------------------
    # New referrals: the form launches the plan itself
    # ------------------------------------------------------------------

    @api.model
    def _log_referral_plans(self, referrals, activities):
        """Log as done the *New referral* rules whose first step is the plan
        the referrals' program just launched, and link their activities; wake
        the cron for the other rules."""
        self.env.flush_all()
        Rule = self.env["partner.followup.rule"]
        for company in referrals.company_id:
            rules = Rule.search(
                [
                    ("trigger", "=", "referral_new"),
                    ("company_id", "in", (False, company.id)),
                ]
            )
            if not rules:
                continue
            engine = self.with_company(company)
            days = FollowupWorkingDays(company, fields.Datetime.now())
            decisions, others = [], rules
            for rule in rules:
                step = rule._get_steps()[:1]
                done = referrals.filtered(
                    lambda r, s=step, c=company: r.company_id == c
                    and s.activity_plan_id
                    and r.program_id.activity_plan_id == s.activity_plan_id
                )
                if done:
                    others -= rule
                decisions += [
                    Decision(
                        DueStep(
                            rule,
                            step,
                            referral._name,
                            referral.id,
                            "new",
                            referral.referee_id.id,
                            days.today,
                            None,
                        ),
                        "done",
                        False,
                        days.today,
                    )
                    for referral in done
                ]
            for decision, log_id in engine._write_decisions(decisions, days):
                activities.filtered(
                    lambda a, d=decision: a.res_id == d.due.res_id
                ).followup_log_id = log_id
            engine._schedule_cron(others, company, days.today)

    # ------------------------------------------------------------------
    # Stop conditions
    # ------------------------------------------------------------------

    def _cancel_followup_activities(self, records, triggers, reason, keep=None):
        """Source changed: cancel the pending follow-up activities of
        ``triggers`` scheduled on ``records`` (except those whose log
        ``keep`` accepts) and say why in their chatter."""
        if not records:
            return
        # sudo: the activities belong to whoever they were assigned to.
        logs = (
            self.env["partner.followup.log"]
            .sudo()
            .search(
                [
                    ("res_model", "=", records._name),
                    ("res_id", "in", records.ids),
                    ("rule_id.trigger", "in", triggers),
                    ("activity_ids", "!=", False),
                ]
            )
        )
        if keep:
            logs = logs.filtered(lambda log: not keep(log))
        activities = logs.activity_ids
        if not activities:
            return
        bodies = {
            res_id: self.env._(
                "Follow-up activities cancelled: %(reason)s", reason=reason
            )
            for res_id in activities.mapped("res_id")
        }
        activities.unlink()
        records.browse(list(bodies)).sudo()._message_log_batch(bodies)
