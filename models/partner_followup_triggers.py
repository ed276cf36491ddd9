# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What the sources tell the engine as they change: wake the cron when
steps will fall due, log the plan a new referral launched itself, cancel
the follow-up activities a closed source no longer needs."""

from collections import defaultdict

from odoo import api, fields, models
from odoo.tools import SQL

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
    def _schedule_cron_at_commit(self, trigger, companies, reference_date):
        """Wake the cron for the rules of ``trigger`` once the transaction
        commits: one computation for all the sources a request changed."""
        pending = self.env.cr.precommit.data.setdefault(
            "partner_followup_triggers", set()
        )
        if not pending:
            self.env.cr.precommit.add(self._schedule_pending_crons)
        pending.update((trigger, company.id, reference_date) for company in companies)

    def _schedule_pending_crons(self):
        pending = self.env.cr.precommit.data.pop("partner_followup_triggers", set())
        # sudo: any salesperson's document wakes the rules admins set up.
        Rule = self.env["partner.followup.rule"].sudo()
        for company_id, reference_date in {(c, d) for _t, c, d in pending}:
            triggers = {
                t for t, c, d in pending if (c, d) == (company_id, reference_date)
            }
            rules = Rule.search(
                [
                    ("trigger", "in", list(triggers)),
                    ("company_id", "in", (False, company_id)),
                ]
            )
            self.sudo()._schedule_cron(
                rules, self.env["res.company"].browse(company_id), reference_date
            )

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

    @api.model
    def _cancel_closed_source_activities(self, orders, state):
        """Orders confirmed or cancelled: cancel the pending chase activities
        of their quotations (and the calls of a cancelled order); a
        confirmed renewal moved the subscription end of its customer, whose
        renewal steps of the previous end date are pointless. One query
        finds them all."""
        triggers = (
            ("quote_sent", "order_confirmed") if state == "cancel" else ("quote_sent",)
        )
        partners = orders.partner_id.commercial_partner_id
        partners.flush_recordset(["subscription_end_date"])
        self.env["mail.activity"].flush_model(["followup_log_id"])
        self.env.cr.execute(
            SQL(
                """
                SELECT a.id, l.res_model, l.res_id, r.trigger
                  FROM mail_activity a
                  JOIN partner_followup_log l ON l.id = a.followup_log_id
                  JOIN partner_followup_rule r ON r.id = l.rule_id
                 WHERE (l.res_model = 'sale.order' AND l.res_id IN %(orders)s
                        AND r.trigger IN %(triggers)s)
                    OR (%(renewal)s AND l.res_model = 'res.partner'
                        AND l.res_id IN %(partners)s
                        AND r.trigger = 'subscription_end'
                        AND l.occurrence IS DISTINCT FROM (
                            SELECT p.subscription_end_date::text
                              FROM res_partner p WHERE p.id = l.res_id))
                """,
                orders=tuple(orders.ids) or (0,),
                triggers=triggers,
                renewal=state == "sale",
                partners=tuple(partners.ids) or (0,),
            )
        )
        rows = self.env.cr.fetchall()
        if not rows:
            return
        reasons = {
            "quote_sent": self.env._("the quotation was confirmed or cancelled."),
            "order_confirmed": self.env._("the order was cancelled."),
            "subscription_end": self.env._("the subscription was renewed."),
        }
        # sudo: the activities belong to whoever they were assigned to.
        self.env["mail.activity"].sudo().browse([row[0] for row in rows]).unlink()
        bodies = defaultdict(dict)
        for _id, model, res_id, trigger in rows:
            bodies[model][res_id] = self.env._(
                "Follow-up activities cancelled: %(reason)s", reason=reasons[trigger]
            )
        for model, model_bodies in bodies.items():
            self.env[model].browse(list(model_bodies)).sudo()._message_log_batch(
                model_bodies
            )
            self.env[model].invalidate_model(["activity_ids"])
