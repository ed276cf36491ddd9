# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Detection: which steps are due, one set-based query per rule, step and
batch of contacts. Nothing here writes."""

from collections import namedtuple
from datetime import date, datetime, timedelta

from odoo import models
from odoo.tools import SQL
from odoo.tools.safe_eval import safe_eval

from .partner_followup_engine import DueStep
from .partner_followup_rule import TRIGGER_MODELS
from .partner_lifecycle_engine import company_value_sql

# What one detection query covers: commercial entities ``low`` to ``high``,
# reference dates ``earliest`` to ``latest`` (company's local dates) and the
# same as naive UTC datetimes, ``start`` included to ``stop`` excluded, for
# the datetime columns and their indexes.
DetectionScope = namedtuple("DetectionScope", "low high earliest latest start stop")

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
        scope = DetectionScope(
            partner_range[0],
            partner_range[1],
            earliest or date(1900, 1, 1),
            latest,
            days.utc_start(earliest) if earliest else datetime(1900, 1, 1),
            days.utc_start(latest + timedelta(days=1)),
        )
        source = getattr(self, f"_detect_sql_{rule.trigger}")(rule, step, days, scope)
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
            # The contact's stage in the current company.
            conditions.append(
                SQL(
                    "%s IN %s",
                    company_value_sql("p", "lifecycle_stage_id", self.env.company.id),
                    tuple(rule.stage_ids.ids),
                )
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

    def _detect_sql_quote_sent(self, rule, step, days, scope):
        ref = self._local_date_sql(SQL("so.date_order"), days)
        return SQL(
            """
            SELECT so.id AS res_id, %(ref)s::text AS occurrence,
                   cp.commercial_partner_id AS partner_id, %(ref)s AS ref_date
              FROM sale_order so
              JOIN res_partner cp ON cp.id = so.partner_id
             WHERE so.state = 'sent' AND so.company_id = %(company)s
               AND so.date_order >= %(start)s AND so.date_order < %(stop)s
               AND cp.commercial_partner_id BETWEEN %(low)s AND %(high)s
            """,
            ref=ref,
            company=self.env.company.id,
            **scope._asdict(),
        )

    def _detect_sql_order_confirmed(self, rule, step, days, scope):
        """The confirmed orders of the batch (the first one of each customer,
        per rule) whose date is in the scope."""
        orders = SQL(
            """
            SELECT so.id, so.date_order, cp.commercial_partner_id
              FROM sale_order so
              JOIN res_partner cp ON cp.id = so.partner_id
             WHERE so.state = 'sale' AND so.company_id = %(company)s
               AND cp.commercial_partner_id BETWEEN %(low)s AND %(high)s
            """,
            company=self.env.company.id,
            low=scope.low,
            high=scope.high,
        )
        if rule.first_order_only:
            orders = SQL(
                """SELECT DISTINCT ON (o.commercial_partner_id) o.*
                     FROM (%s) o
                    ORDER BY o.commercial_partner_id, o.date_order, o.id""",
                orders,
            )
        ref = self._local_date_sql(SQL("fo.date_order"), days)
        return SQL(
            """
            SELECT fo.id AS res_id, %(ref)s::text AS occurrence,
                   fo.commercial_partner_id AS partner_id, %(ref)s AS ref_date
              FROM (%(orders)s) fo
             WHERE fo.date_order >= %(start)s AND fo.date_order < %(stop)s
            """,
            ref=ref,
            orders=orders,
            start=scope.start,
            stop=scope.stop,
        )

    def _detect_sql_subscription_end(self, rule, step, days, scope):
        """The subscriptions bought in the current company ending in the
        scope."""
        end = company_value_sql("sp", "subscription_end_date", self.env.company.id)
        return SQL(
            """
            SELECT sp.id AS res_id, %(end)s::text AS occurrence,
                   sp.id AS partner_id, %(end)s AS ref_date
              FROM res_partner sp
             WHERE %(end)s BETWEEN %(earliest)s AND %(latest)s
               AND sp.id = sp.commercial_partner_id
               AND sp.id BETWEEN %(low)s AND %(high)s
            """,
            end=end,
            **scope._asdict(),
        )

    def _detect_sql_stage_entered(self, rule, step, days, scope):
        return SQL(
            """
            SELECT h.partner_id AS res_id, h.id::text AS occurrence,
                   h.partner_id AS partner_id, %(ref)s AS ref_date
              FROM partner_lifecycle_history h
              JOIN res_partner hp ON hp.id = h.partner_id
             WHERE h.to_stage_id = %(stage)s
               AND h.company_id = %(company)s
               AND hp.id = hp.commercial_partner_id
               AND h.partner_id BETWEEN %(low)s AND %(high)s
               AND h.date >= %(start)s AND h.date < %(stop)s
            """,
            ref=self._local_date_sql(SQL("h.date"), days),
            # Entered in the current company, and still there.
            stage=company_value_sql("hp", "lifecycle_stage_id", self.env.company.id),
            company=self.env.company.id,
            **scope._asdict(),
        )

    def _detect_sql_referral_new(self, rule, step, days, scope):
        ref = self._local_date_sql(SQL("r.date_referral"), days)
        return SQL(
            """
            SELECT r.id AS res_id, 'new' AS occurrence,
                   r.referee_id AS partner_id, %(ref)s AS ref_date
              FROM referral_referral r
             WHERE r.state IN %(states)s AND r.company_id = %(company)s
               AND r.referee_id BETWEEN %(low)s AND %(high)s
               AND r.date_referral >= %(start)s AND r.date_referral < %(stop)s
            """,
            ref=ref,
            states=OPEN_REFERRAL_STATES,
            company=self.env.company.id,
            **scope._asdict(),
        )

    def _detect_sql_dormant(self, rule, step, days, scope):
        """Last sign of life: the contact's creation, its last confirmed order
        or its last done activity (a message of an activity type), read with
        one pass over the batch's messages."""
        last = SQL(
            """GREATEST(
                %(created)s,
                COALESCE(%(ordered)s, '1900-01-01'::date),
                COALESCE(%(done)s, '1900-01-01'::date))""",
            created=self._local_date_sql(SQL("dp.create_date"), days),
            ordered=self._local_date_sql(
                company_value_sql(
                    "dp", "lifecycle_last_order_date", self.env.company.id
                ),
                days,
            ),
            done=self._local_date_sql(SQL("dm.last"), days),
        )
        return SQL(
            """
            SELECT dl.res_id, dl.ref_date::text AS occurrence,
                   dl.res_id AS partner_id, dl.ref_date
              FROM (SELECT dp.id AS res_id, %(last)s AS ref_date
                      FROM res_partner dp
                      LEFT JOIN (
                           SELECT m.res_id, max(m.date) AS last
                             FROM mail_message m
                            WHERE m.model = 'res.partner'
                              AND m.res_id BETWEEN %(low)s AND %(high)s
                              AND m.mail_activity_type_id IS NOT NULL
                            GROUP BY m.res_id) dm ON dm.res_id = dp.id
                     WHERE dp.id = dp.commercial_partner_id
                       AND dp.id BETWEEN %(low)s AND %(high)s
                       AND dp.create_date < %(stop)s) dl
            """,
            last=last,
            **scope._asdict(),
        )

    def _detect_sql_campaign(self, rule, step, days, scope):
        """Steps after the first: counted from the day the first one fired."""
        first = rule._get_steps()[:1]
        return SQL(
            """
            SELECT cl.res_id, cl.occurrence, cl.partner_id,
                   %(ref)s AS ref_date
              FROM partner_followup_log cl
             WHERE cl.rule_id = %(rule)s AND cl.step_id = %(first)s
               AND cl.outcome = 'done' AND cl.company_id = %(company)s
               AND cl.partner_id BETWEEN %(low)s AND %(high)s
               AND cl.date_done >= %(start)s AND cl.date_done < %(stop)s
            """,
            ref=self._local_date_sql(SQL("cl.date_done"), days),
            rule=rule.id,
            first=first.id,
            company=self.env.company.id,
            **scope._asdict(),
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
