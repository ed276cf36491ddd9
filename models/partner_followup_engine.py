# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The follow-up engine: the cron in batches, arbitration between the steps
due for one contact, and the log rows that make every step fire once.

Detection (``partner_followup_detection.py``) finds due steps; this file
decides what each becomes (done, postponed, skipped) and claims it in the
log; execution (``partner_followup_execution.py``) creates the activities,
emails and chatter notes of the steps claimed."""

from collections import Counter, defaultdict, namedtuple
from datetime import datetime, time, timedelta

import pytz

from odoo import api, fields, models
from odoo.tools import SQL, format_date

from .partner_followup_working_days import FollowupWorkingDays

FOLLOWUP_CRON_CURSOR = "sale_referral_lifecycle.followup_cron_last_partner_id"
MAX_ID = 2**31 - 1

# A step due on a record: what the engine arbitrates, logs and executes.
# ``log_id`` is the postponed log row it comes back from, if any.
DueStep = namedtuple(
    "DueStep",
    "rule step res_model res_id occurrence partner_id due_date log_id",
)
# What the engine decided for a due step.
Decision = namedtuple("Decision", "due outcome reason scheduled_date")


class PartnerFollowupEngine(models.AbstractModel):
    _name = "partner.followup.engine"
    _description = "Follow-up Engine"

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------

    @api.model
    def _cron_run_followups(self, batch_size=5000):
        """One batch of commercial entities per call, in id order from where
        the previous call stopped (kept in a system parameter); the cron
        runner calls again while some remain."""
        # sudo: the cron acts for every salesperson of every company.
        engine = self.sudo()
        Param = engine.env["ir.config_parameter"]
        last_id = int(Param.get_param(FOLLOWUP_CRON_CURSOR, 0))
        engine.env.cr.execute(
            """SELECT id FROM res_partner
                WHERE id = commercial_partner_id AND id > %s
                ORDER BY id LIMIT %s""",
            [last_id, batch_size],
        )
        ids = [row[0] for row in engine.env.cr.fetchall()]
        remaining = 0
        if len(ids) == batch_size:
            engine.env.cr.execute(
                """SELECT count(*) FROM res_partner
                    WHERE id = commercial_partner_id AND id > %s""",
                [ids[-1]],
            )
            remaining = engine.env.cr.fetchone()[0]
        stats = engine._run((last_id + 1, ids[-1] if remaining else MAX_ID))
        Param.set_param(FOLLOWUP_CRON_CURSOR, ids[-1] if remaining else 0)
        self.env["ir.cron"]._notify_progress(done=len(ids), remaining=remaining)
        return stats

    @api.model
    def _run(self, partner_range=(0, MAX_ID), rules=None, companies=None):
        """Detect, arbitrate, log and execute the due steps of ``rules`` (all
        active rules by default) for the commercial entities of
        ``partner_range``, company by company; return the outcome counts."""
        # Detection reads with SQL: what the ORM holds in memory first.
        self.env.flush_all()
        stats = Counter()
        for company, company_rules, days in self._iter_companies(rules, companies):
            engine = self.with_company(company)
            due = engine._detect_due_steps(company_rules, days, partner_range)
            stats.update(engine._process_due_steps(due, days))
        return stats

    @api.model
    def _preview(self, rules, companies):
        """What a run would decide today, nothing written."""
        self.env.flush_all()
        decisions = []
        for company, company_rules, days in self._iter_companies(rules, companies):
            engine = self.with_company(company)
            due = engine._detect_due_steps(company_rules, days, (0, MAX_ID))
            due = [d for d in due if d.rule in rules]
            decisions += engine._arbitrate(due, days)
        return decisions

    def _iter_companies(self, rules, companies):
        Rule = self.env["partner.followup.rule"]
        rules = rules if rules is not None else Rule.search([])
        companies = companies or self.env["res.company"].search([])
        now = fields.Datetime.now()
        for company in companies:
            company_rules = rules.filtered(
                lambda r, c=company: r._applies_to_company(c)
            )
            if company_rules:
                yield company, company_rules, FollowupWorkingDays(company, now)

    # ------------------------------------------------------------------
    # Arbitration
    # ------------------------------------------------------------------

    def _process_due_steps(self, due, days):
        decisions = self._arbitrate(due, days)
        claimed = self._write_decisions(decisions, days)
        fired = [
            (decision, log_id)
            for decision, log_id in claimed
            if decision.outcome == "done"
        ]
        if fired:
            self._execute(fired, days)
        return Counter(decision.outcome for decision, _log_id in claimed)

    def _arbitrate(self, due, days):
        """One decision per due step. Archived or blocked contacts and closed
        sources skip it; per contact, steps of rules with the highest priority
        fire first, once per gap of working days; the others are postponed
        past the gap; never two emails the same day."""
        if not due:
            return []
        Partner = self.env["res.partner"].with_context(active_test=False)
        partners = Partner.browse({d.partner_id for d in due})
        partners.fetch(["active", "followup_blocked"])
        stopped = self._check_stop_conditions(due)
        recent = self._read_recent_followups(partners, days)
        decisions = []
        per_partner = defaultdict(list)
        for step in due:
            partner = Partner.browse(step.partner_id)
            reason = (
                (not partner.active and self.env._("contact archived"))
                or (partner.followup_blocked and self.env._("contact blocked"))
                or stopped.get(step)
            )
            if reason:
                decisions.append(Decision(step, "skipped", reason, days.today))
            else:
                per_partner[step.partner_id].append(step)
        gap = self.env.company.followup_min_gap_days
        for partner_id, steps in per_partner.items():
            decisions += self._arbitrate_contact(
                steps, recent.get(partner_id, {}), gap, days
            )
        return decisions

    def _arbitrate_contact(self, steps, recent, gap, days):
        today = days.today
        steps = sorted(
            steps,
            key=lambda d: (
                d.rule.sequence,
                d.rule.id,
                d.step.sequence,
                d.step.id,
                d.due_date,
                d.res_id,
            ),
        )
        email_today = recent.get("email_today", False)
        last = recent.get("last")  # (date, label) of the last gap-counting one
        allowed_from = days.shift(last[0], gap) if last and gap else today
        fired_label = None
        decisions = []
        for step in steps:
            has_email = bool(step.step.mail_template_id)
            bypass = step.rule.kind == "event" and step.rule.bypass_gap
            if has_email and email_today:
                decisions.append(
                    Decision(
                        step,
                        "postponed",
                        self.env._("an email was already sent to this contact today"),
                        days.shift(today, 1),
                    )
                )
                continue
            if not bypass and fired_label and gap:
                decisions.append(
                    Decision(
                        step,
                        "postponed",
                        self.env._("lower priority than '%(step)s'", step=fired_label),
                        days.shift(today, gap),
                    )
                )
                continue
            if not bypass and allowed_from > today:
                decisions.append(
                    Decision(
                        step,
                        "postponed",
                        self.env._(
                            "gap: '%(step)s' on %(date)s",
                            step=last[1],
                            date=format_date(self.env, last[0]),
                        ),
                        allowed_from,
                    )
                )
                continue
            decisions.append(Decision(step, "done", False, today))
            email_today = email_today or has_email
            if not bypass:
                fired_label = step.step.name
        return decisions

    def _read_recent_followups(self, partners, days):
        """Per contact: the last done step that counts for the gap (local
        date, step name) and whether an email went today."""
        since = days.today - timedelta(days=60)
        start = days.tz.localize(datetime.combine(since, time.min))
        self.env.cr.execute(
            SQL(
                """
                SELECT l.partner_id, l.date_done, l.step_id,
                       r.kind = 'event' AND r.bypass_gap,
                       s.mail_template_id IS NOT NULL
                  FROM partner_followup_log l
                  JOIN partner_followup_rule r ON r.id = l.rule_id
                  JOIN partner_followup_step s ON s.id = l.step_id
                 WHERE l.outcome = 'done' AND l.company_id = %(company)s
                   AND l.partner_id IN %(partners)s AND l.date_done >= %(start)s
                 ORDER BY l.date_done, l.id
                """,
                company=self.env.company.id,
                partners=tuple(partners.ids),
                start=start.astimezone(pytz.utc).replace(tzinfo=None),
            )
        )
        Step = self.env["partner.followup.step"]
        recent = defaultdict(dict)
        for partner_id, date_done, step_id, bypass, email in self.env.cr.fetchall():
            local = pytz.utc.localize(date_done).astimezone(days.tz).date()
            if not bypass:
                recent[partner_id]["last"] = (local, Step.browse(step_id).name)
            if email and local == days.today:
                recent[partner_id]["email_today"] = True
        return recent

    # ------------------------------------------------------------------
    # Log
    # ------------------------------------------------------------------

    def _write_decisions(self, decisions, days):
        """Claim the decisions in the log: new rows are inserted unless the
        key exists (another run got there first), postponed rows are updated
        only if still postponed. Return the (decision, log id) pairs claimed:
        only those are executed."""
        if not decisions:
            return []
        now = fields.Datetime.now()
        uid = self.env.uid
        new = [d for d in decisions if not d.due.log_id]
        again = {d.due.log_id: d for d in decisions if d.due.log_id}
        claimed = []
        if new:
            # One read of the salespeople, not one per row.
            partners = (
                self.env["res.partner"]
                .with_context(active_test=False)
                .browse({d.due.partner_id for d in new})
            )
            partners.fetch(["user_id"])
            salespeople = {p.id: p.user_id.id or None for p in partners}
            columns = list(
                zip(
                    *(
                        (
                            d.due.rule.id,
                            d.due.step.id,
                            d.due.res_model,
                            d.due.res_id,
                            d.due.occurrence,
                            d.due.partner_id,
                            salespeople.get(d.due.partner_id),
                            d.due.due_date,
                            d.scheduled_date,
                            d.outcome,
                            d.reason or None,
                            int(d.outcome == "postponed"),
                        )
                        for d in new
                    ),
                    strict=True,
                )
            )
            self.env.cr.execute(
                SQL(
                    """
                    INSERT INTO partner_followup_log (
                        rule_id, step_id, res_model, res_id, occurrence,
                        partner_id, user_id, due_date, scheduled_date, outcome,
                        reason, postpone_count, company_id, date_done,
                        create_uid, create_date, write_uid, write_date)
                    SELECT v.*, %(company)s,
                           CASE WHEN v.outcome = 'done' THEN %(now)s END,
                           %(uid)s, %(now)s, %(uid)s, %(now)s
                      FROM unnest(%(rule)s::int[], %(step)s::int[],
                                  %(model)s::varchar[], %(res)s::int[],
                                  %(occurrence)s::varchar[], %(partner)s::int[],
                                  %(user)s::int[], %(due)s::date[],
                                  %(scheduled)s::date[], %(outcome)s::varchar[],
                                  %(reason)s::varchar[], %(count)s::int[])
                        AS v(rule_id, step_id, res_model, res_id, occurrence,
                             partner_id, user_id, due_date, scheduled_date,
                             outcome, reason, postpone_count)
                    ON CONFLICT (rule_id, step_id, res_model, res_id, occurrence)
                    DO NOTHING
                    RETURNING id, rule_id, step_id, res_model, res_id, occurrence
                    """,
                    company=self.env.company.id,
                    now=now,
                    uid=uid,
                    rule=list(columns[0]),
                    step=list(columns[1]),
                    model=list(columns[2]),
                    res=list(columns[3]),
                    occurrence=list(columns[4]),
                    partner=list(columns[5]),
                    user=list(columns[6]),
                    due=list(columns[7]),
                    scheduled=list(columns[8]),
                    outcome=list(columns[9]),
                    reason=list(columns[10]),
                    count=list(columns[11]),
                )
            )
            by_key = {
                (
                    d.due.rule.id,
                    d.due.step.id,
                    d.due.res_model,
                    d.due.res_id,
                    d.due.occurrence,
                ): d
                for d in new
            }
            claimed += [
                (by_key[tuple(row[1:])], row[0]) for row in self.env.cr.fetchall()
            ]
        if again:
            ids, outcomes, reasons, dates = zip(
                *(
                    (log_id, d.outcome, d.reason or None, d.scheduled_date)
                    for log_id, d in again.items()
                ),
                strict=True,
            )
            self.env.cr.execute(
                SQL(
                    """
                    UPDATE partner_followup_log l
                       SET outcome = v.outcome,
                           reason = COALESCE(v.reason, l.reason),
                           scheduled_date = v.scheduled_date,
                           date_done = CASE WHEN v.outcome = 'done'
                                            THEN %(now)s END,
                           postpone_count = l.postpone_count
                                + (v.outcome = 'postponed')::int,
                           write_uid = %(uid)s, write_date = %(now)s
                      FROM unnest(%(ids)s::int[], %(outcomes)s::varchar[],
                                  %(reasons)s::varchar[], %(dates)s::date[])
                        AS v(id, outcome, reason, scheduled_date)
                     WHERE l.id = v.id AND l.outcome = 'postponed'
                 RETURNING l.id
                    """,
                    now=now,
                    uid=uid,
                    ids=list(ids),
                    outcomes=list(outcomes),
                    reasons=list(reasons),
                    dates=list(dates),
                )
            )
            claimed += [(again[row[0]], row[0]) for row in self.env.cr.fetchall()]
        self.env["partner.followup.log"].invalidate_model()
        return claimed
