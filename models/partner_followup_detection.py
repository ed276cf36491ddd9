# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Detection: which steps are due, one set-based query per rule, step and
batch of contacts. Nothing here writes."""

from datetime import timedelta

from odoo import models
from odoo.tools import SQL, format_date
from odoo.tools.safe_eval import safe_eval

from .partner_followup_engine import DueStep
from .partner_followup_rule import TRIGGER_MODELS

OPEN_REFERRAL_STATES = ("new", "in_progress")


# The engine is split by concern (detection, execution, source hooks), each
# file under 400 lines, as the code map asks.
# pylint: disable=consider-merging-classes-inherited
class PartnerFollowupEngine(models.AbstractModel):
    _inherit = "partner.followup.engine"

    def _detect_due_steps(self, rules, days, partner_range):
        """Due steps of ``rules`` for the company of ``days``, among the
        commercial entities whose id is within ``partner_range`` (both ends
        included), not yet logged; then the postponed steps due again."""
        due = []
        for rule in rules:
            steps = rule._get_steps()
            if rule.trigger == "campaign":
                # The first step fires when the campaign is launched.
                steps = steps[1:]
            for step in steps:
                due += self._detect_step(rule, step, days, partner_range)
        due += self._detect_postponed(rules, days, partner_range)
        return due

    def _detect_step(self, rule, step, days, partner_range):
        working = rule.delay_type == "working"
        latest = days.latest_reference(step.delay, working)
        earliest = None
        if rule.max_late_days:
            # A superset in calendar days, made exact once the due dates known.
            earliest = latest - timedelta(
                days=rule.max_late_days + abs(step.delay) * 2 + 10
            )
        source = getattr(self, f"_detect_sql_{rule.trigger}")(rule, step, days)
        query = SQL(
            """
            SELECT src.res_id, src.occurrence, src.partner_id, src.ref_date
              FROM (%(source)s) src
              JOIN res_partner p ON p.id = src.partner_id
             WHERE src.partner_id BETWEEN %(low)s AND %(high)s
               AND src.ref_date <= %(latest)s
               AND (%(earliest)s::date IS NULL OR src.ref_date >= %(earliest)s)
               AND %(conditions)s
               AND NOT EXISTS (
                    SELECT 1 FROM partner_followup_log l
                     WHERE l.rule_id = %(rule)s AND l.step_id = %(step)s
                       AND l.res_model = %(model)s AND l.res_id = src.res_id
                       AND l.occurrence = src.occurrence)
            """,
            source=source,
            low=partner_range[0],
            high=partner_range[1],
            latest=latest,
            earliest=earliest,
            conditions=self._conditions_sql(rule),
            rule=rule.id,
            step=step.id,
            model=TRIGGER_MODELS[rule.trigger],
        )
        self.env.cr.execute(query)
        limit = (
            days.today - timedelta(days=rule.max_late_days)
            if rule.max_late_days
            else None
        )
        due = []
        for res_id, occurrence, partner_id, ref_date in self.env.cr.fetchall():
            due_date = days.shift(ref_date, step.delay, working)
            if limit and due_date < limit:
                continue
            due.append(
                DueStep(
                    rule,
                    step,
                    TRIGGER_MODELS[rule.trigger],
                    res_id,
                    occurrence,
                    partner_id,
                    due_date,
                    None,
                )
            )
        return due

    def _conditions_sql(self, rule):
        """The rule's conditions on the commercial entity ``p``."""
        if TRIGGER_MODELS[rule.trigger] == "res.partner":
            # A contact followed up for itself belongs to one company: its
            # own, or for a shared contact its salesperson's, or the first.
            conditions = [
                SQL(
                    """COALESCE(p.company_id,
                                (SELECT u.company_id FROM res_users u
                                  WHERE u.id = p.user_id),
                                (SELECT min(id) FROM res_company)) = %s""",
                    self.env.company.id,
                )
            ]
        else:
            conditions = [
                SQL("(p.company_id IS NULL OR p.company_id = %s)", self.env.company.id)
            ]
        if rule.stage_ids:
            conditions.append(
                SQL("p.lifecycle_stage_id IN %s", tuple(rule.stage_ids.ids))
            )
        if rule.team_ids:
            conditions.append(
                SQL(
                    """p.user_id IN (SELECT user_id FROM crm_team_member
                        WHERE active AND crm_team_id IN %s)""",
                    tuple(rule.team_ids.ids),
                )
            )
        if rule.salesperson_ids:
            conditions.append(SQL("p.user_id IN %s", tuple(rule.salesperson_ids.ids)))
        domain = safe_eval(rule.partner_domain or "[]")
        if domain:
            Partner = self.env["res.partner"].with_context(active_test=False)
            conditions.append(SQL("p.id IN %s", Partner._search(domain).subselect()))
        return SQL(" AND ").join(conditions)

    # ------------------------------------------------------------------
    # One source per trigger: res_id, occurrence, partner_id (commercial
    # entity), ref_date (the local date the step's delay counts from).
    # ------------------------------------------------------------------

    def _local_date_sql(self, column, days):
        return SQL(
            "(%s AT TIME ZONE 'UTC' AT TIME ZONE %s)::date", column, days.tz_name
        )

    def _detect_sql_quote_sent(self, rule, step, days):
        ref = self._local_date_sql(SQL("so.date_order"), days)
        return SQL(
            """
            SELECT so.id AS res_id, %(ref)s::text AS occurrence,
                   cp.commercial_partner_id AS partner_id, %(ref)s AS ref_date
              FROM sale_order so
              JOIN res_partner cp ON cp.id = so.partner_id
             WHERE so.state = 'sent' AND so.company_id = %(company)s
            """,
            ref=ref,
            company=self.env.company.id,
        )

    def _detect_sql_order_confirmed(self, rule, step, days):
        ref = self._local_date_sql(SQL("so.date_order"), days)
        first_only = SQL("TRUE")
        if rule.first_order_only:
            first_only = SQL(
                """NOT EXISTS (
                    SELECT 1 FROM sale_order o2
                      JOIN res_partner cp2 ON cp2.id = o2.partner_id
                     WHERE cp2.commercial_partner_id = cp.commercial_partner_id
                       AND o2.company_id = so.company_id AND o2.state = 'sale'
                       AND (o2.date_order, o2.id) < (so.date_order, so.id))"""
            )
        return SQL(
            """
            SELECT so.id AS res_id, %(ref)s::text AS occurrence,
                   cp.commercial_partner_id AS partner_id, %(ref)s AS ref_date
              FROM sale_order so
              JOIN res_partner cp ON cp.id = so.partner_id
             WHERE so.state = 'sale' AND so.company_id = %(company)s
               AND %(first_only)s
            """,
            ref=ref,
            company=self.env.company.id,
            first_only=first_only,
        )

    def _detect_sql_subscription_end(self, rule, step, days):
        return SQL(
            """
            SELECT sp.id AS res_id, sp.subscription_end_date::text AS occurrence,
                   sp.id AS partner_id, sp.subscription_end_date AS ref_date
              FROM res_partner sp
             WHERE sp.subscription_end_date IS NOT NULL
               AND sp.id = sp.commercial_partner_id
            """
        )

    def _detect_sql_stage_entered(self, rule, step, days):
        return SQL(
            """
            SELECT h.partner_id AS res_id, h.id::text AS occurrence,
                   h.partner_id AS partner_id, %(ref)s AS ref_date
              FROM partner_lifecycle_history h
              JOIN res_partner hp ON hp.id = h.partner_id
             WHERE h.to_stage_id = hp.lifecycle_stage_id
               AND hp.id = hp.commercial_partner_id
            """,
            ref=self._local_date_sql(SQL("h.date"), days),
        )

    def _detect_sql_referral_new(self, rule, step, days):
        ref = self._local_date_sql(SQL("r.date_referral"), days)
        return SQL(
            """
            SELECT r.id AS res_id, 'new' AS occurrence,
                   r.referee_id AS partner_id, %(ref)s AS ref_date
              FROM referral_referral r
             WHERE r.state IN %(states)s AND r.company_id = %(company)s
            """,
            ref=ref,
            states=OPEN_REFERRAL_STATES,
            company=self.env.company.id,
        )

    def _detect_sql_dormant(self, rule, step, days):
        """Last sign of life: the contact's creation, its last confirmed order
        or its last done activity (a message of an activity type)."""
        last = SQL(
            """GREATEST(
                %(created)s,
                COALESCE(%(ordered)s, '1900-01-01'::date),
                COALESCE((
                    SELECT %(message)s FROM mail_message m
                     WHERE m.model = 'res.partner' AND m.res_id = dp.id
                       AND m.mail_activity_type_id IS NOT NULL
                     ORDER BY m.id DESC LIMIT 1), '1900-01-01'::date))""",
            created=self._local_date_sql(SQL("dp.create_date"), days),
            ordered=self._local_date_sql(SQL("dp.lifecycle_last_order_date"), days),
            message=self._local_date_sql(SQL("m.date"), days),
        )
        return SQL(
            """
            SELECT dl.res_id, dl.ref_date::text AS occurrence,
                   dl.res_id AS partner_id, dl.ref_date
              FROM (SELECT dp.id AS res_id, %(last)s AS ref_date
                      FROM res_partner dp
                     WHERE dp.id = dp.commercial_partner_id) dl
            """,
            last=last,
        )

    def _detect_sql_campaign(self, rule, step, days):
        """Steps after the first: counted from the day the first one fired."""
        first = rule._get_steps()[:1]
        return SQL(
            """
            SELECT cl.res_id, cl.occurrence, cl.partner_id,
                   %(ref)s AS ref_date
              FROM partner_followup_log cl
             WHERE cl.rule_id = %(rule)s AND cl.step_id = %(first)s
               AND cl.outcome = 'done' AND cl.company_id = %(company)s
            """,
            ref=self._local_date_sql(SQL("cl.date_done"), days),
            rule=rule.id,
            first=first.id,
            company=self.env.company.id,
        )

    def _detect_postponed(self, rules, days, partner_range):
        """Postponed rows of ``rules`` in this company whose new date came."""
        if not rules:
            return []
        self.env.cr.execute(
            SQL(
                """
                SELECT id, rule_id, step_id, res_model, res_id, occurrence,
                       partner_id, due_date
                  FROM partner_followup_log
                 WHERE outcome = 'postponed' AND scheduled_date <= %(today)s
                   AND company_id = %(company)s AND rule_id IN %(rules)s
                   AND partner_id BETWEEN %(low)s AND %(high)s
                """,
                today=days.today,
                company=self.env.company.id,
                rules=tuple(rules.ids),
                low=partner_range[0],
                high=partner_range[1],
            )
        )
        rows = self.env.cr.fetchall()
        Rule = self.env["partner.followup.rule"]
        Step = self.env["partner.followup.step"]
        return [
            DueStep(Rule.browse(row[1]), Step.browse(row[2]), *row[3:], log_id=row[0])
            for row in rows
        ]

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
