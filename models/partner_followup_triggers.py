# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What the sources tell the engine: wake the cron when steps will fall
due, log the plan a new referral launched itself, cancel the follow-up
activities a closed source no longer needs, and the stop conditions checked
again when a step is due (source closed, contact replied)."""

from collections import defaultdict

from odoo import api, fields, models
from odoo.tools import SQL, format_date

from .partner_followup_detection import OPEN_REFERRAL_STATES
from .partner_followup_engine import Decision, DueStep
from .partner_followup_working_days import FollowupWorkingDays
from .partner_lifecycle_engine import company_value_sql


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
    # Campaigns: launched by hand
    # ------------------------------------------------------------------

    @api.model
    def _launch_campaign(self, rule, partners, occurrence):
        """First step of the campaign ``rule`` for ``partners`` (commercial
        entities) now, in the current company; the next steps come with the
        cron."""
        self.env.flush_all()
        company = self.env.company
        days = FollowupWorkingDays(company, fields.Datetime.now())
        step = rule._get_steps()[:1]
        due = [
            self._due_step(rule, step, partner, occurrence, days.today)
            for partner in partners
        ]
        stats = self._process_due_steps(due, days)
        self._schedule_cron(rule, company, days.today)
        return stats

    def _due_step(self, rule, step, partner, occurrence, due_date):
        return DueStep(
            rule,
            step,
            "res.partner",
            partner.id,
            occurrence,
            partner.id,
            due_date,
            None,
        )

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
    def _cancel_superseded_renewal_activities(self, partners):
        """The lifecycle job moved the subscription end of ``partners`` (a
        renewal was confirmed): their renewal steps planned for the previous
        end date are pointless."""
        return self._cancel_closed_source_activities(
            self.env["sale.order"], "sale", partners=partners
        )

    @api.model
    def _cancel_closed_source_activities(self, orders, state, partners=None):
        """Orders confirmed or cancelled: cancel the pending chase activities
        of their quotations (and the calls of a cancelled order); a
        confirmed renewal moved the subscription end of its customer, whose
        renewal steps of the previous end date are pointless. One query
        finds them all."""
        triggers = (
            ("quote_sent", "order_confirmed") if state == "cancel" else ("quote_sent",)
        )
        if partners is None:
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
                            SELECT %(end)s::text
                              FROM res_partner p WHERE p.id = l.res_id))
                """,
                orders=tuple(orders.ids) or (0,),
                triggers=triggers,
                renewal=state == "sale",
                # The subscription of the log's company.
                end=company_value_sql(
                    "p", "subscription_end_date", SQL("l.company_id")
                ),
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

    # ------------------------------------------------------------------
    # Stop conditions, checked again when a step is due
    # ------------------------------------------------------------------

    def _check_stop_conditions(self, due):
        """{due step: reason} for the steps that must not fire: a postponed
        step whose source closed meanwhile, a later step of a sequence the
        contact answered."""
        stopped = {}
        again = [d for d in due if d.log_id]
        if again:
            records = self._browse_sources(again)
            existing = {
                (model, record.id)
                for model in {d.res_model for d in again}
                for record in self.env[model]
                .with_context(active_test=False)
                .browse([d.res_id for d in again if d.res_model == model])
                .exists()
            }
            for step in again:
                if (step.res_model, step.res_id) not in existing:
                    stopped[step] = self.env._("source deleted")
                    continue
                record = records[step.res_model, step.res_id]
                reason = self._get_source_closed_reason(step, record)
                if reason:
                    stopped[step] = reason
        replies = self._read_replies(
            [d for d in due if d not in stopped and d.rule.stop_on_reply]
        )
        for step in due:
            replied = replies.get(
                (step.rule.id, step.res_model, step.res_id, step.occurrence)
            )
            if replied and step not in stopped:
                stopped[step] = self.env._(
                    "the contact replied on %(date)s",
                    date=format_date(self.env, replied),
                )
        return stopped

    def _get_source_closed_reason(self, due, record):
        """Why the source of a step due again no longer wants it, if so."""
        trigger = due.rule.trigger
        if trigger == "quote_sent" and record.state != "sent":
            return self.env._("source closed: the quotation was answered")
        if trigger == "order_confirmed" and record.state != "sale":
            return self.env._("source closed: the order was cancelled")
        if trigger == "referral_new" and record.state not in OPEN_REFERRAL_STATES:
            return self.env._("source closed: the referral is closed")
        if trigger == "subscription_end" and (
            str(record.subscription_end_date) != due.occurrence
        ):
            return self.env._("source closed: the subscription was renewed")
        return False

    def _read_replies(self, due):
        """{(rule, model, record, occurrence): date} of the first email the
        contact sent on the contact or on the document after an earlier step
        of the same sequence."""
        if not due:
            return {}
        self.env.cr.execute(
            SQL(
                """
                SELECT l.rule_id, l.res_model, l.res_id, l.occurrence,
                       min(m.date)
                  FROM partner_followup_log l
                  JOIN mail_message m
                    ON m.message_type = 'email' AND m.date > l.date_done
                   AND ((m.model = l.res_model AND m.res_id = l.res_id)
                        OR (m.model = 'res.partner' AND m.res_id = l.partner_id))
                  JOIN res_partner author ON author.id = m.author_id
                   AND author.commercial_partner_id = l.partner_id
                 WHERE l.outcome = 'done'
                   AND (l.rule_id, l.res_id) IN (
                        SELECT * FROM unnest(%(rules)s::int[], %(res)s::int[]))
                 GROUP BY l.rule_id, l.res_model, l.res_id, l.occurrence
                """,
                rules=[d.rule.id for d in due],
                res=[d.res_id for d in due],
            )
        )
        return {tuple(row[:4]): row[4].date() for row in self.env.cr.fetchall()}
