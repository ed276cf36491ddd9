# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The follow-up engine, in sections:

- the cron in batches, arbitration between the steps due for one contact,
  and the log rows that make every step fire once;
- detection: which steps are due, one set-based query per rule, step and
  batch of contacts (nothing there writes);
- triggers: what the sources tell the engine (wake the cron when steps
  will fall due, log the plan a new referral launched itself, cancel the
  follow-up activities a closed source no longer needs, the stop conditions
  checked again when a step is due: source closed, contact replied);
- execution: the activities, emails and chatter notes of the steps claimed,
  created in bulk (one create per model, one composer per email template).
"""

import json
from collections import Counter, defaultdict, namedtuple
from datetime import date, datetime, time, timedelta

import pytz
from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import SQL, create_index, format_date
from odoo.tools.safe_eval import safe_eval

from ..chatter_notes import log_notes
from ..cron_batches import defer_on_conflict
from ..lifecycle.partner_lifecycle_engine import WRITE_MARGIN, company_value_sql
from ..mail_compose_message import COMPOSER_BATCH_SIZE
from ..mail_render_mixin import COMPILE_QWEB_ONCE
from ..working_days import WorkingDays

FOLLOWUP_CRON = "sale_referral_lifecycle.ir_cron_partner_followup"
FOLLOWUP_CRON_CURSOR = "sale_referral_lifecycle.followup_cron_last_partner_id"
# The last pass of the cron that went to its end (JSON): its start, the last
# message created before it, and per company and step the latest reference
# date it covered. The next pass reads the days that entered each step's
# window since, and the contacts written since.
FOLLOWUP_CRON_LAST_RUN = "sale_referral_lifecycle.followup_cron_last_run"
# The same for the pass in progress (it runs in batches, over several calls).
FOLLOWUP_CRON_PASS = "sale_referral_lifecycle.followup_cron_pass"
# Days between two passes over every contact (the passes between read what
# changed since the last one).
FULL_PASS_DAYS = 7
MAX_ID = 2**31 - 1
# A step due on a record: what the engine arbitrates, logs and executes.
# ``log_id`` is the postponed log row it comes back from, if any; ``since``
# the moment the occurrence happened (naive UTC), if known.
DueStep = namedtuple(
    "DueStep",
    "rule step res_model res_id occurrence partner_id due_date log_id since",
    defaults=(None,),
)
# What arbitration reads of a due step's rule and step: their priority
# order, whether the step sends an email, whether it fires whatever the gap.
StepTraits = namedtuple("StepTraits", "order email bypass")
# What the engine decided for a due step.
Decision = namedtuple("Decision", "due outcome reason scheduled_date")
# What one detection query covers: commercial entities ``low`` to ``high``,
# reference dates ``earliest`` to ``latest`` (company's local dates) and the
# same as naive UTC datetimes, ``start`` included to ``stop`` excluded, for
# the datetime columns and their indexes; ``partners``: if not None, only
# these commercial entities (ids); ``window``: if not None, the first local
# date that entered the step's window since the last run (the dormant
# trigger's candidates: those whose last sign of life is from then on).
DetectionScope = namedtuple(
    "DetectionScope",
    "low high earliest latest start stop partners window",
    defaults=(None, None),
)
OPEN_REFERRAL_STATES = ("new", "in_progress")
# Emails rendered and created together by the mass-mail composer.
EMAIL_BATCH_SIZE = 500
# Log rows written by one call from which the log's statistics are refreshed.
LOG_ANALYZE_ROWS = 1000


class PartnerFollowupEngine(models.AbstractModel):
    _name = "partner.followup.engine"
    _description = "Follow-up Engine"

    # ------------------------------------------------------------------
    # Entry points
    # ------------------------------------------------------------------

    def init(self):
        # What the incremental pass reads the changes by (sale_order,
        # res_partner, account_move and referral_referral have their
        # write_date indexed by the lifecycle engine).
        create_index(self.env.cr, "mail_message_date_index", "mail_message", ["date"])
        create_index(
            self.env.cr,
            "partner_followup_log_write_date_index",
            "partner_followup_log",
            ["write_date"],
        )
        return super().init()

    @api.model
    @defer_on_conflict(FOLLOWUP_CRON)
    def _cron_run_followups(self, batch_size=5000):
        """One batch of commercial entities per call, in id order from where
        the previous call stopped (kept in a system parameter); the cron
        runner calls again while some remain. After a pass that went to its
        end, the next one reads what changed since (``_detect_step``), in one
        call."""
        # sudo: the cron acts for every salesperson of every company.
        engine = self.sudo()
        Param = engine.env["ir.config_parameter"]
        last_id = int(Param.get_param(FOLLOWUP_CRON_CURSOR, 0))
        current = json.loads(Param.get_param(FOLLOWUP_CRON_PASS) or "null")
        previous = json.loads(Param.get_param(FOLLOWUP_CRON_LAST_RUN) or "null")
        if not last_id or not current:
            current = dict(engine._start_pass(), first=last_id)
            # A full pass every FULL_PASS_DAYS: what the changes cannot show
            # (a deleted message or order, a user moved to another company)
            # is caught up within that time.
            full = previous and previous.get("full", previous["start"])
            if not full or fields.Datetime.to_datetime(full) <= (
                fields.Datetime.to_datetime(current["start"])
                - timedelta(days=FULL_PASS_DAYS)
            ):
                current["full"] = current["start"]
                current["full_pass"] = True
            else:
                current["full"] = full
        if current.get("full_pass"):
            previous = None
        if previous and not last_id:
            # What changed since the last pass, for every contact at once: the
            # work follows the changes, not the number of contacts.
            stats = engine._run(passes=(previous, current))
            Param.set_param(FOLLOWUP_CRON_LAST_RUN, json.dumps(current))
            Param.set_param(FOLLOWUP_CRON_PASS, False)
            self.env["ir.cron"]._notify_progress(done=sum(stats.values()), remaining=0)
            return stats
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
        stats = engine._run(
            (last_id + 1, ids[-1] if remaining else MAX_ID),
            passes=(previous, current),
        )
        Param.set_param(FOLLOWUP_CRON_CURSOR, ids[-1] if remaining else 0)
        if remaining:
            Param.set_param(FOLLOWUP_CRON_PASS, json.dumps(current))
        else:
            if not current.get("first"):
                # Every contact was read: the next pass reads what changed.
                Param.set_param(FOLLOWUP_CRON_LAST_RUN, json.dumps(current))
            Param.set_param(FOLLOWUP_CRON_PASS, False)
        self.env["ir.cron"]._notify_progress(done=len(ids), remaining=remaining)
        return stats

    @api.model
    def _start_pass(self):
        """The record of a pass starting now: its start, the last message
        created a margin before (a transaction that started before and
        commits after the pass wrote rows dated before it), and the latest
        reference dates it covers, filled in by the detection."""
        start = fields.Datetime.now()
        self.env.cr.execute(
            "SELECT max(id) FROM mail_message WHERE create_date < %s",
            [start - WRITE_MARGIN],
        )
        return {
            "start": fields.Datetime.to_string(start),
            "message_id": self.env.cr.fetchone()[0] or 0,
            "latest": {},
        }

    @api.model
    def _run(self, partner_range=(0, MAX_ID), rules=None, companies=None, passes=None):
        """Detect, arbitrate, log and execute the due steps of ``rules`` (all
        active rules by default) for the commercial entities of
        ``partner_range``, company by company; return the outcome counts.
        ``passes``: (the last pass that went to its end, the current one),
        as ``_start_pass`` made them: the detection then reads what changed
        since the last one, and records in the current one what it covered."""
        # Detection reads with SQL: what the ORM holds in memory first.
        self.env.flush_all()
        stats = Counter()
        for company, company_rules, days in self._iter_companies(rules, companies):
            engine = self.with_company(company)
            due = engine._detect_due_steps(company_rules, days, partner_range, passes)
            stats.update(engine._process_due_steps(due, days))
        return stats

    @api.model
    def _preview(self, rules, companies):
        """What a run would decide today for ``rules``, nothing written: the
        run's own detection and arbitration, over every active rule (a step
        of ``rules`` may wait for a step of another rule due the same day)."""
        self.env.flush_all()
        every = self.env["partner.followup.rule"].search([]) | rules
        decisions = []
        for company, company_rules, days in self._iter_companies(every, companies):
            engine = self.with_company(company)
            due = engine._detect_due_steps(company_rules, days, (0, MAX_ID))
            decisions += [
                decision
                for decision in engine._arbitrate(due, days)
                if decision.due.rule in rules
            ]
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
                yield company, company_rules, WorkingDays(company, now)

    # ------------------------------------------------------------------
    # Arbitration
    # ------------------------------------------------------------------

    def _process_due_steps(self, due, days):
        decisions = self._arbitrate(due, days)
        claimed = self._write_decisions(decisions, days)
        if len(claimed) >= LOG_ANALYZE_ROWS:
            # The next batch's detection looks the log up per candidate: its
            # planner must know the rows just written (else it reads every
            # row of a step for each candidate).
            self.env.cr.execute("ANALYZE partner_followup_log")
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
        # Read once per contact and per step, not once per due step.
        flags = {p.id: (p.active, p.followup_blocked) for p in partners}
        traits = {}
        for d in due:
            if (d.rule, d.step) not in traits:
                traits[d.rule, d.step] = StepTraits(
                    (d.rule.sequence, d.rule.id, d.step.sequence, d.step.id),
                    bool(d.step.mail_template_id),
                    d.rule.kind == "event" and d.rule.bypass_gap,
                )
        decisions = []
        per_partner = defaultdict(list)
        for step in due:
            active, blocked = flags[step.partner_id]
            reason = (
                (not active and self.env._("contact archived"))
                or (blocked and self.env._("contact blocked"))
                or stopped.get(step)
            )
            if reason:
                decisions.append(Decision(step, "skipped", reason, days.today))
            else:
                per_partner[step.partner_id].append(step)
        gap = self.env.company.followup_min_gap_days
        for partner_id, steps in per_partner.items():
            decisions += self._arbitrate_contact(
                steps, recent.get(partner_id, {}), gap, days, traits
            )
        return decisions

    def _arbitrate_contact(self, steps, recent, gap, days, traits=None):
        """``traits``: {(rule, step): StepTraits} of the due steps, if known
        (else read from the steps)."""
        today = days.today

        def trait(d):
            if traits is not None:
                return traits[d.rule, d.step]
            return StepTraits(
                (d.rule.sequence, d.rule.id, d.step.sequence, d.step.id),
                bool(d.step.mail_template_id),
                d.rule.kind == "event" and d.rule.bypass_gap,
            )

        steps = sorted(steps, key=lambda d: (*trait(d).order, d.due_date, d.res_id))
        email_today = recent.get("email_today", False)
        last = recent.get("last")  # (date, label) of the last gap-counting one
        allowed_from = days.shift(last[0], gap) if last and gap else today
        fired = None  # the step that fires today, and counts for the gap
        decisions = []
        for step in steps:
            has_email = trait(step).email
            bypass = trait(step).bypass
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
            if not bypass and fired and gap:
                decisions.append(
                    Decision(
                        step,
                        "postponed",
                        self.env._(
                            "lower priority than '%(step)s' of rule '%(rule)s'",
                            step=fired.step.name,
                            rule=fired.rule.name,
                        ),
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
                fired = step
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
                            d.due.since,
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
                        reason, postpone_count, occurrence_date, company_id,
                        date_done, cycle, released,
                        create_uid, create_date, write_uid, write_date)
                    SELECT v.*, %(company)s,
                           CASE WHEN v.outcome = 'done' THEN %(now)s END,
                           -- After the releases of the occurrence, if any.
                           (SELECT count(*) FROM partner_followup_log r
                             WHERE r.rule_id = v.rule_id
                               AND r.step_id = v.step_id
                               AND r.res_model = v.res_model
                               AND r.res_id = v.res_id
                               AND r.occurrence = v.occurrence
                               AND r.company_id = %(company)s AND r.released),
                           false,
                           %(uid)s, %(now)s, %(uid)s, %(now)s
                      FROM unnest(%(rule)s::int[], %(step)s::int[],
                                  %(model)s::varchar[], %(res)s::int[],
                                  %(occurrence)s::varchar[], %(partner)s::int[],
                                  %(user)s::int[], %(due)s::date[],
                                  %(scheduled)s::date[], %(outcome)s::varchar[],
                                  %(reason)s::varchar[], %(count)s::int[],
                                  %(since)s::timestamp[])
                        AS v(rule_id, step_id, res_model, res_id, occurrence,
                             partner_id, user_id, due_date, scheduled_date,
                             outcome, reason, postpone_count, occurrence_date)
                    ON CONFLICT (rule_id, step_id, res_model, res_id,
                                 occurrence, company_id, cycle)
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
                    since=list(columns[12]),
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

    # ------------------------------------------------------------------
    # Detection: the steps due, one query per rule and step
    # ------------------------------------------------------------------

    def _detect_due_steps(self, rules, days, partner_range, passes=None):
        """Due steps of ``rules`` for the company of ``days``, among the
        commercial entities whose id is within ``partner_range`` (both ends
        included), not yet logged; then the postponed steps due again.
        ``passes``: see ``_run``."""
        previous, current = passes or (None, None)
        covered, changed = self._detection_since(rules, days, partner_range, previous)
        due = []
        for rule in rules:
            steps = rule._get_steps()
            if rule.trigger == "campaign":
                # The first step fires when the campaign is launched.
                steps = steps[1:]
            for step in steps:
                due += self._detect_step(
                    rule, step, days, partner_range, covered.get(step.id), changed
                )
                if current is not None:
                    # The latest reference of the pass's first call: a later
                    # call (after midnight) covers more, read again next time.
                    latest = current["latest"].setdefault(str(self.env.company.id), {})
                    latest.setdefault(
                        str(step.id),
                        days.latest_reference(
                            step.delay, rule.delay_type == "working"
                        ).isoformat(),
                    )
        due += self._detect_postponed(rules, days, partner_range)
        return due

    def _detection_since(self, rules, days, partner_range, previous):
        """What the last pass ``previous`` covered in the current company:
        ``({step id: latest reference date covered}, commercial entity ids
        changed since)``; ``({}, None)`` for a full detection (no last pass,
        the company written since). A rule written since, whose conditions
        read more than the contact's own columns, or a step not covered is
        detected in full."""
        company = self.env.company
        if not previous:
            return {}, None
        since = fields.Datetime.to_datetime(previous["start"]) - WRITE_MARGIN
        latest = previous["latest"].get(str(company.id))
        if not latest:
            return {}, None
        self.env.cr.execute(
            SQL(
                """
                SELECT EXISTS (SELECT 1 FROM res_company
                                WHERE id = %(company)s AND write_date > %(since)s)
                    OR EXISTS (SELECT 1 FROM res_partner
                                WHERE id = %(company_partner)s
                                  AND write_date > %(since)s)
                    OR EXISTS (SELECT 1 FROM resource_calendar
                                WHERE write_date > %(since)s)
                    OR EXISTS (SELECT 1 FROM resource_calendar_leaves
                                WHERE write_date > %(since)s)
                    OR EXISTS (SELECT 1 FROM resource_calendar_attendance
                                WHERE write_date > %(since)s)
                """,
                company=company.id,
                company_partner=company.partner_id.id,
                since=since,
            )
        )
        if self.env.cr.fetchone()[0]:
            return {}, None
        covered = {}
        for rule in rules:
            if rule.write_date > since or not rule._followup_conditions_on_contact():
                continue
            for step in rule._get_steps():
                if str(step.id) in latest and step.write_date <= since:
                    covered[step.id] = date.fromisoformat(latest[str(step.id)])
        if not covered:
            return {}, None
        changed = self._changed_partner_ids(
            rules, since, previous["message_id"], partner_range
        )
        return covered, changed

    def _changed_partner_ids(self, rules, since, message_id, partner_range):
        """Commercial entities of ``partner_range`` whose follow-ups may have
        changed since ``since`` other than by the days passing: contacts,
        orders, invoices and referrals written, messages that count as a sign
        of life created (after the message ``message_id``), log rows released
        or re-armed and campaigns launched, signals recorded, the members of
        the teams of ``rules`` written, the contacts of a salesperson written
        (moved to another company: a shared contact follows its
        salesperson's). Each part on an index, the salespeople's gated on
        one of them written."""
        first_steps = [
            rule._get_steps()[:1].id
            for rule in self.env["partner.followup.rule"]
            .with_context(active_test=False)
            .search([("trigger", "=", "campaign")])
        ]
        self.env.cr.execute(
            SQL(
                """
                WITH written(id) AS (
                    SELECT id FROM res_partner WHERE write_date > %(since)s
                    UNION
                    SELECT partner_id FROM sale_order WHERE write_date > %(since)s
                    UNION
                    SELECT partner_id FROM account_move WHERE write_date > %(since)s
                    UNION
                    SELECT unnest(ARRAY[referee_id, sponsor_id])
                      FROM referral_referral WHERE write_date > %(since)s
                    UNION
                    SELECT partner_id FROM partner_followup_log
                     WHERE write_date > %(since)s
                       AND (released OR step_id = ANY(%(first)s))
                    UNION
                    SELECT partner_id FROM partner_followup_signal
                     WHERE date > %(since)s
                    UNION
                    SELECT p.id FROM res_partner p
                     WHERE EXISTS (SELECT 1 FROM res_users
                                    WHERE write_date > %(since)s)
                       AND p.user_id IN (SELECT id FROM res_users
                                          WHERE write_date > %(since)s)
                    UNION
                    SELECT p.id FROM res_partner p
                     WHERE %(teams)s AND p.user_id IN (
                           SELECT user_id FROM crm_team_member
                            WHERE write_date > %(since)s)
                    UNION
                    SELECT CASE m.model
                           WHEN 'res.partner' THEN m.res_id
                           WHEN 'sale.order' THEN so.partner_id
                           WHEN 'account.move' THEN am.partner_id
                           END
                      FROM mail_message m
                      LEFT JOIN sale_order so
                        ON m.model = 'sale.order' AND so.id = m.res_id
                      LEFT JOIN account_move am
                        ON m.model = 'account.move' AND am.id = m.res_id
                     WHERE m.id > %(message)s
                       AND m.model IN ('res.partner', 'sale.order', 'account.move')
                       AND (m.mail_activity_type_id IS NOT NULL
                            OR m.message_type IN ('email', 'comment'))
                    UNION
                    SELECT unnest(ARRAY[rr.referee_id, rr.sponsor_id])
                      FROM mail_message m
                      JOIN referral_referral rr
                        ON m.model = 'referral.referral' AND rr.id = m.res_id
                     WHERE m.id > %(message)s
                       AND (m.mail_activity_type_id IS NOT NULL
                            OR m.message_type IN ('email', 'comment')))
                SELECT DISTINCT p.commercial_partner_id
                  FROM written w
                  JOIN res_partner p ON p.id = w.id
                 WHERE p.commercial_partner_id BETWEEN %(low)s AND %(high)s
                """,
                since=since,
                # The teams' members matter to the rules of some teams only.
                teams=any(rule.team_ids for rule in rules),
                first=first_steps,
                message=message_id,
                low=partner_range[0],
                high=partner_range[1],
            )
        )
        return [row[0] for row in self.env.cr.fetchall()]

    def _detect_step(self, rule, step, days, partner_range, covered=None, changed=None):
        """The due steps of ``step``. ``covered``: the latest reference date
        a pass covered (None: every reference date); the due steps then are
        those whose reference date entered the window since, plus those of
        the ``changed`` commercial entities. A reference date covered before
        was due then, and logged then, unless its record changed since."""
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
        if covered is None:
            return self._detect_scope(rule, step, days, scope)
        window = covered + timedelta(days=1)
        if rule.trigger == "dormant":
            # One query: the candidates whose last sign of life entered the
            # window, and the changed ones.
            return self._detect_scope(
                rule, step, days, scope._replace(partners=changed, window=window)
            )
        due = []
        if window <= latest:
            due += self._detect_scope(
                rule,
                step,
                days,
                scope._replace(
                    earliest=max(scope.earliest, window),
                    start=max(scope.start, days.utc_start(window)),
                ),
            )
        if changed:
            seen = {(d.res_id, d.occurrence) for d in due}
            due += [
                d
                for d in self._detect_scope(
                    rule, step, days, scope._replace(partners=changed)
                )
                if (d.res_id, d.occurrence) not in seen
            ]
        return due

    def _detect_scope(self, rule, step, days, scope):
        """The due steps of ``step`` within ``scope``."""
        working = rule.delay_type == "working"
        latest, earliest = scope.latest, scope.earliest
        source = getattr(self, f"_detect_sql_{rule.trigger}")(rule, step, days, scope)
        query = SQL(
            """
            SELECT src.res_id, src.occurrence, src.partner_id, src.ref_date,
                   src.since
              FROM (%(source)s) src
              JOIN res_partner p ON p.id = src.partner_id
             WHERE src.partner_id BETWEEN %(low)s AND %(high)s
               AND src.ref_date <= %(latest)s
               AND src.ref_date >= %(earliest)s
               AND %(conditions)s
               AND NOT EXISTS (
                    SELECT 1 FROM partner_followup_log l
                     WHERE l.rule_id = %(rule)s AND l.step_id = %(step)s
                       AND l.res_model = %(model)s AND l.res_id = src.res_id
                       AND l.occurrence = src.occurrence
                       AND l.company_id = %(company)s AND NOT l.released)
            """,
            company=self.env.company.id,
            source=source,
            low=scope.low,
            high=scope.high,
            latest=latest,
            earliest=earliest,
            # The dormant source applies them to its candidates already.
            conditions=SQL("TRUE")
            if rule.trigger == "dormant"
            else self._conditions_sql(rule, (scope.low, scope.high)),
            rule=rule.id,
            step=step.id,
            model=rule.res_model,
        )
        self.env.cr.execute(query)
        limit = (
            days.today - timedelta(days=rule.max_late_days)
            if rule.max_late_days
            else None
        )
        due = []
        for res_id, occurrence, partner_id, ref_date, since in self.env.cr.fetchall():
            due_date = days.shift(ref_date, step.delay, working)
            if limit and due_date < limit:
                continue
            due.append(
                DueStep(
                    rule,
                    step,
                    rule.res_model,
                    res_id,
                    occurrence,
                    partner_id,
                    due_date,
                    None,
                    since,
                )
            )
        return due

    def _conditions_sql(self, rule, partner_range=(0, MAX_ID), within=None, only=None):
        """The rule's conditions on the commercial entity ``p``; the
        documents read for them are those of ``partner_range``, or those of
        the commercial entities whose id the SQL condition ``within(column)``
        accepts. ``only``: ``"company"`` for the condition on the company
        (where a shared contact is followed up), ``"contact"`` for the
        others (stages, teams, salespeople, filter)."""
        if rule.trigger in ("dormant", "campaign"):
            # A contact followed up for itself: in its own company; a shared
            # contact in each company where it has documents, and without
            # any, in its salesperson's company (else the first).
            # Sets read once per query (hashed), not per contact, within the
            # batch's commercial entities.
            low, high = partner_range

            def among(column):
                if within:
                    return within(column)
                return SQL("%s BETWEEN %s AND %s", column, low, high)

            def documented(company):
                where = SQL("AND so.company_id = %s", company) if company else SQL()
                where_am = SQL("AND am.company_id = %s", company) if company else SQL()
                where_rr = SQL("AND rr.company_id = %s", company) if company else SQL()
                return SQL(
                    """(SELECT sp.commercial_partner_id
                          FROM sale_order so
                          JOIN res_partner sp ON sp.id = so.partner_id
                         WHERE %(sp_among)s %(so)s
                        UNION
                        SELECT am.commercial_partner_id FROM account_move am
                         WHERE %(am_among)s
                           AND am.move_type != 'entry' %(am)s
                        UNION
                        SELECT unnest(ARRAY[rr.referee_id, rr.sponsor_id])
                          FROM referral_referral rr
                         WHERE TRUE %(rr)s)""",
                    so=where,
                    am=where_am,
                    rr=where_rr,
                    sp_among=among(SQL("sp.commercial_partner_id")),
                    am_among=among(SQL("am.commercial_partner_id")),
                )

            conditions = [
                SQL(
                    """(p.company_id = %(company)s
                        OR (p.company_id IS NULL AND (
                            p.id IN %(here)s
                            OR (p.id NOT IN (SELECT d.id FROM %(anywhere)s d(id)
                                              WHERE d.id IS NOT NULL)
                                AND COALESCE(
                                    (SELECT u.company_id FROM res_users u
                                      WHERE u.id = p.user_id),
                                    (SELECT min(id) FROM res_company))
                                    = %(company)s))))""",
                    company=self.env.company.id,
                    here=documented(self.env.company.id),
                    anywhere=documented(None),
                )
            ]
        else:
            # The documents, the subscription and the stages are the
            # company's own: a shared contact is followed up in each.
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
        if only == "company":
            conditions = conditions[:1]
        elif only == "contact":
            conditions = conditions[1:] or [SQL("TRUE")]
        return SQL(" AND ").join(conditions)

    # ------------------------------------------------------------------
    # One source per trigger: res_id, occurrence, partner_id (commercial
    # entity), ref_date (the local date the step's delay counts from).
    # ------------------------------------------------------------------

    def _batch_sql(self, scope, column):
        """SQL: the commercial entity ``column`` is in the scope's batch (and
        among its ``partners`` if any)."""
        batch = SQL("%s BETWEEN %s AND %s", column, scope.low, scope.high)
        if scope.partners is None:
            return batch
        return SQL("%s AND %s = ANY(%s)", batch, column, list(scope.partners))

    def _local_date_sql(self, column, days):
        return SQL(
            "(%s AT TIME ZONE 'UTC' AT TIME ZONE %s)::date", column, days.tz_name
        )

    def _quote_sent_moment_sql(self, rule, alias="so"):
        """The moment a quotation chase counts from: the day it was sent
        (its last sending for the rules that start again on each one), the
        order date for quotations sent before that moment was recorded."""
        column = (
            "quotation_last_sent_date"
            if rule.restart_on_resend
            else "quotation_sent_date"
        )
        return SQL(
            "COALESCE(%s, %s)",
            SQL.identifier(alias, column),
            SQL.identifier(alias, "date_order"),
        )

    def _detect_sql_quote_sent(self, rule, step, days, scope):
        moment = self._quote_sent_moment_sql(rule)
        ref = self._local_date_sql(moment, days)
        return SQL(
            """
            SELECT so.id AS res_id, %(ref)s::text AS occurrence,
                   cp.commercial_partner_id AS partner_id, %(ref)s AS ref_date,
                   %(moment)s AS since
              FROM sale_order so
              JOIN res_partner cp ON cp.id = so.partner_id
             WHERE so.state = 'sent' AND so.company_id = %(company)s
               AND %(moment)s >= %(start)s AND %(moment)s < %(stop)s
               AND %(batch)s
            """,
            ref=ref,
            moment=moment,
            company=self.env.company.id,
            batch=self._batch_sql(scope, SQL("cp.commercial_partner_id")),
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
               AND %(batch)s
               -- Customers with a confirmed order in the scope's dates (on
               -- the index of the order dates): the others have no first
               -- order there.
               AND cp.commercial_partner_id IN (
                    SELECT wp.commercial_partner_id
                      FROM sale_order wo
                      JOIN res_partner wp ON wp.id = wo.partner_id
                     WHERE wo.state = 'sale' AND wo.company_id = %(company)s
                       AND wo.date_order >= %(start)s
                       AND wo.date_order < %(stop)s
                       -- The batch's (on the index), not every customer's.
                       AND %(within)s)
            """,
            company=self.env.company.id,
            batch=self._batch_sql(scope, SQL("cp.commercial_partner_id")),
            within=self._batch_sql(scope, SQL("wp.commercial_partner_id")),
            start=scope.start,
            stop=scope.stop,
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
                   fo.commercial_partner_id AS partner_id, %(ref)s AS ref_date,
                   fo.date_order AS since
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
                   sp.id AS partner_id, %(end)s AS ref_date,
                   NULL::timestamp AS since
              FROM res_partner sp
             WHERE %(end)s BETWEEN %(earliest)s AND %(latest)s
               AND sp.id = sp.commercial_partner_id
               AND %(batch)s
            """,
            end=end,
            batch=self._batch_sql(scope, SQL("sp.id")),
            **scope._asdict(),
        )

    def _detect_sql_stage_entered(self, rule, step, days, scope):
        return SQL(
            """
            SELECT h.partner_id AS res_id, h.id::text AS occurrence,
                   h.partner_id AS partner_id, %(ref)s AS ref_date,
                   h.date AS since
              FROM partner_lifecycle_history h
              JOIN res_partner hp ON hp.id = h.partner_id
             WHERE h.to_stage_id = %(stage)s
               AND h.company_id = %(company)s
               AND hp.id = hp.commercial_partner_id
               AND %(batch)s
               AND h.date >= %(start)s AND h.date < %(stop)s
            """,
            ref=self._local_date_sql(SQL("h.date"), days),
            # Entered in the current company, and still there.
            stage=company_value_sql("hp", "lifecycle_stage_id", self.env.company.id),
            company=self.env.company.id,
            batch=self._batch_sql(scope, SQL("h.partner_id")),
            **scope._asdict(),
        )

    def _detect_sql_referral_new(self, rule, step, days, scope):
        ref = self._local_date_sql(SQL("r.date_referral"), days)
        return SQL(
            """
            SELECT r.id AS res_id, 'new' AS occurrence,
                   r.referee_id AS partner_id, %(ref)s AS ref_date,
                   r.date_referral AS since
              FROM referral_referral r
             WHERE r.state IN %(states)s AND r.company_id = %(company)s
               AND %(batch)s
               AND r.date_referral >= %(start)s AND r.date_referral < %(stop)s
            """,
            ref=ref,
            states=OPEN_REFERRAL_STATES,
            company=self.env.company.id,
            batch=self._batch_sql(scope, SQL("r.referee_id")),
            **scope._asdict(),
        )

    def _detect_sql_dormant(self, rule, step, days, scope):
        """Last sign of life: the contact's creation, its last confirmed
        order in the company (the lifecycle's stored value), or the last of
        what happened with it (``_contact_events_sql``: done activities and
        messages of its side, on the contact or on any of its documents in
        the company). The events are read for the candidates only: the
        contacts of the rule's conditions whose creation and last order are
        old enough."""
        created = self._local_date_sql(SQL("p.create_date"), days)
        ordered = self._local_date_sql(
            company_value_sql("p", "lifecycle_last_order_date", self.env.company.id),
            days,
        )
        base = SQL("GREATEST(%s, COALESCE(%s, '1900-01-01'::date))", created, ordered)
        events = self._contact_events_sql(
            lambda column: SQL("%s IN (SELECT id FROM dormant_candidates)", column),
            orders=False,
        )
        return SQL(
            """
            WITH dormant_scope AS MATERIALIZED (
                SELECT p.id, %(base)s AS base
                  FROM res_partner p
                 WHERE p.id = p.commercial_partner_id
                   AND %(batch)s
                   AND p.create_date < %(stop)s
                   AND %(base)s <= %(latest)s
                   AND %(contact)s),
            dormant_candidates AS MATERIALIZED (
                SELECT p.id, ds.base
                  FROM dormant_scope ds
                  JOIN res_partner p ON p.id = ds.id
                 WHERE %(conditions)s)
            SELECT dl.res_id, dl.ref_date::text AS occurrence,
                   dl.res_id AS partner_id, dl.ref_date,
                   NULL::timestamp AS since
              FROM (SELECT c.id AS res_id,
                           GREATEST(c.base, COALESCE(%(happened)s,
                                                     '1900-01-01'::date))
                               AS ref_date
                      FROM dormant_candidates c
                      LEFT JOIN (
                           SELECT e.partner_id, max(e.date) AS last
                             FROM (%(events)s) e
                            GROUP BY e.partner_id) ev ON ev.partner_id = c.id
                   ) dl
            """,
            base=base,
            batch=self._dormant_batch_sql(scope, base, days),
            contact=self._conditions_sql(rule, only="contact"),
            # The documents of the contacts in scope only (their stage, their
            # creation and last order already checked).
            conditions=self._conditions_sql(
                rule,
                within=lambda column: SQL(
                    "%s IN (SELECT id FROM dormant_scope)", column
                ),
                only="company",
            ),
            happened=self._local_date_sql(SQL("ev.last"), days),
            events=events,
            **scope._asdict(),
        )

    def _dormant_batch_sql(self, scope, base, days):
        """The commercial entities of the batch a dormant step reads: with a
        ``window`` (the first day not covered by the last run), only those
        whose last sign of life may have entered the step's window since:
        their creation or last order from then on, a sign of life dated from
        then on (the messages that count, on the index of their dates), and
        the ``partners`` changed. A sign of life dated earlier whose last one
        is in the window is the message of that day."""
        if scope.window is None:
            return self._batch_sql(scope, SQL("p.id"))
        # A superset of the contacts with a sign of life in the window: the
        # messages that may count, whoever wrote them.
        dated = SQL(
            """m.date >= %s AND m.date < %s
               AND (m.mail_activity_type_id IS NOT NULL
                    OR m.message_type IN ('email', 'comment'))""",
            days.utc_start(scope.window),
            scope.stop,
        )
        return SQL(
            """p.id BETWEEN %(low)s AND %(high)s
               AND (%(base)s >= %(window)s
                    OR p.id = ANY(%(changed)s)
                    OR p.id IN (
                        SELECT CASE m.model
                               WHEN 'res.partner' THEN mp.commercial_partner_id
                               WHEN 'sale.order' THEN sp.commercial_partner_id
                               ELSE am.commercial_partner_id END
                          FROM mail_message m
                          LEFT JOIN res_partner mp
                            ON m.model = 'res.partner' AND mp.id = m.res_id
                          LEFT JOIN sale_order so
                            ON m.model = 'sale.order' AND so.id = m.res_id
                          LEFT JOIN res_partner sp ON sp.id = so.partner_id
                          LEFT JOIN account_move am
                            ON m.model = 'account.move' AND am.id = m.res_id
                         WHERE %(dated)s
                           AND m.model IN ('res.partner', 'sale.order',
                                           'account.move')
                        UNION
                        SELECT unnest(ARRAY[rr.referee_id, rr.sponsor_id])
                          FROM mail_message m
                          JOIN referral_referral rr
                            ON m.model = 'referral.referral' AND rr.id = m.res_id
                         WHERE %(dated)s))""",
            low=scope.low,
            high=scope.high,
            base=base,
            window=scope.window,
            changed=list(scope.partners or ()),
            dated=dated,
        )

    def _contact_events_sql(self, partners, orders=True):
        """What happened with contacts, in the current company: one row per
        event (partner_id: the commercial entity, res_model and res_id: where,
        date: naive UTC, kind), for the commercial entities whose id the SQL
        condition ``partners(column)`` accepts. Kinds:

        - ``answer``: an email or a comment (the portal's chatter) written by
          the customer's side (any of its contacts or portal users), on one
          of its contacts or on one of its documents (quotations and orders,
          invoices, referrals as referee or sponsor) of the company;
        - ``activity``: an activity marked done there;
        - ``order``: an order confirmed in the company (unless ``orders`` is
          false: for the readers of the lifecycle's last order date).

        The one answer to "what happened with this contact since then": the
        stop conditions read the answers after an occurrence, the dormant
        trigger the last of all events."""
        company = self.env.company.id
        docs = SQL(
            """
            SELECT 'res.partner' AS model, dp.id AS res_id,
                   dp.commercial_partner_id AS partner_id
              FROM res_partner dp
             WHERE %(dp)s
            UNION ALL
            SELECT 'sale.order', so.id, sp.commercial_partner_id
              FROM sale_order so
              JOIN res_partner sp ON sp.id = so.partner_id
             WHERE so.company_id = %(company)s AND %(sp)s
            UNION ALL
            SELECT 'account.move', am.id, am.commercial_partner_id
              FROM account_move am
             WHERE am.company_id = %(company)s AND am.move_type != 'entry'
               AND %(am)s
            UNION ALL
            SELECT 'referral.referral', rr.id, rr.referee_id
              FROM referral_referral rr
             WHERE rr.company_id = %(company)s AND %(rr)s
            UNION ALL
            SELECT 'referral.referral', rs.id, rs.sponsor_id
              FROM referral_referral rs
             WHERE rs.company_id = %(company)s AND %(rs)s
            """,
            company=company,
            dp=partners(SQL("dp.commercial_partner_id")),
            sp=partners(SQL("sp.commercial_partner_id")),
            am=partners(SQL("am.commercial_partner_id")),
            rr=partners(SQL("rr.referee_id")),
            rs=partners(SQL("rs.sponsor_id")),
        )
        messages = SQL(
            """
            SELECT d.partner_id, d.model AS res_model, d.res_id, m.date,
                   CASE WHEN m.mail_activity_type_id IS NOT NULL
                        THEN 'activity' ELSE 'answer' END AS kind
              FROM (%(docs)s) d
              JOIN mail_message m ON m.model = d.model AND m.res_id = d.res_id
              LEFT JOIN res_partner author ON author.id = m.author_id
             WHERE m.mail_activity_type_id IS NOT NULL
                OR (m.message_type IN ('email', 'comment')
                    AND author.commercial_partner_id = d.partner_id)
            """,
            docs=docs,
        )
        if not orders:
            return messages
        return SQL(
            """
            %(messages)s
            UNION ALL
            SELECT op.commercial_partner_id, 'sale.order', so.id,
                   so.date_order, 'order'
              FROM sale_order so
              JOIN res_partner op ON op.id = so.partner_id
             WHERE so.state = 'sale' AND so.company_id = %(company)s
               AND %(op)s
            """,
            messages=messages,
            company=company,
            op=partners(SQL("op.commercial_partner_id")),
        )

    def _detect_sql_campaign(self, rule, step, days, scope):
        """Steps after the first: counted from the day the first one fired."""
        first = rule._get_steps()[:1]
        return SQL(
            """
            SELECT cl.res_id, cl.occurrence, cl.partner_id,
                   %(ref)s AS ref_date, cl.date_done AS since
              FROM partner_followup_log cl
             WHERE cl.rule_id = %(rule)s AND cl.step_id = %(first)s
               AND cl.outcome = 'done' AND NOT cl.released
               AND cl.company_id = %(company)s
               AND %(batch)s
               AND cl.date_done >= %(start)s AND cl.date_done < %(stop)s
            """,
            ref=self._local_date_sql(SQL("cl.date_done"), days),
            rule=rule.id,
            first=first.id,
            company=self.env.company.id,
            batch=self._batch_sql(scope, SQL("cl.partner_id")),
            **scope._asdict(),
        )

    def _detect_sql_signal(self, rule, step, days, scope):
        """One occurrence per signal (``partner.followup.signal``) of the
        rule's kind: the quotation viewed while still sent, the referral page
        opened, a portal page visited after the rule's days away, the
        sponsor's link visited."""
        kinds = {
            "quote_viewed": SQL(
                """s.signal_type = 'quote_viewed' AND s.res_model = 'sale.order'
                   AND EXISTS (SELECT 1 FROM sale_order so
                                WHERE so.id = s.res_id AND so.state = 'sent')"""
            ),
            "referral_page": SQL("s.signal_type = 'visit' AND s.page = 'referrals'"),
            "came_back": SQL(
                "s.signal_type = 'visit' AND s.days_away >= %s",
                max(rule.signal_days, 1),
            ),
            "link_visit": SQL("s.signal_type = 'link_visit'"),
        }
        res_id = SQL("s.res_id" if rule.res_model == "sale.order" else "s.partner_id")
        return SQL(
            """
            SELECT %(res_id)s AS res_id, s.id::text AS occurrence,
                   s.partner_id, %(ref)s AS ref_date, s.date AS since
              FROM partner_followup_signal s
             WHERE s.company_id = %(company)s AND %(kind)s
               AND %(batch)s
               AND s.date >= %(start)s AND s.date < %(stop)s
            """,
            res_id=res_id,
            ref=self._local_date_sql(SQL("s.date"), days),
            company=self.env.company.id,
            kind=kinds.get(rule.signal_type) or SQL("FALSE"),
            batch=self._batch_sql(scope, SQL("s.partner_id")),
            **scope._asdict(),
        )

    @api.model
    def _schedule_signal_cron(self):
        """A signal recorded: the signal rules run within the hour, once
        for all the signals of the transaction."""
        data = self.env.cr.precommit.data
        if data.get("partner_followup_signal"):
            return
        data["partner_followup_signal"] = True

        def trigger():
            data.pop("partner_followup_signal", None)
            cron = self.env.ref(
                "sale_referral_lifecycle.ir_cron_partner_followup_signal",
                raise_if_not_found=False,
            )
            if cron:
                cron.sudo()._trigger()

        self.env.cr.precommit.add(trigger)

    @api.model
    def _cron_run_signals(self):
        """The signal rules, for every contact: their detection reads the
        recent signals only."""
        # sudo: the cron acts for every salesperson of every company.
        rules = (
            self.env["partner.followup.rule"]
            .sudo()
            .search([("trigger", "=", "signal")])
        )
        if rules:
            return self.sudo()._run(rules=rules)
        return None

    def _detect_postponed(self, rules, days, partner_range):
        """Postponed rows of ``rules`` in this company whose new date came."""
        if not rules:
            return []
        self.env.cr.execute(
            SQL(
                """
                SELECT id, rule_id, step_id, res_model, res_id, occurrence,
                       partner_id, due_date, occurrence_date
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
            DueStep(
                Rule.browse(row[1]),
                Step.browse(row[2]),
                *row[3:8],
                log_id=row[0],
                since=row[8],
            )
            for row in rows
        ]

    # ------------------------------------------------------------------
    # Triggers: wake-ups, campaigns, the referral plan, stop conditions
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
        cron = self.env.ref(FOLLOWUP_CRON, raise_if_not_found=False)
        if not cron or not rules:
            return
        days = WorkingDays(company, fields.Datetime.now())
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
        days = WorkingDays(company, fields.Datetime.now())
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
        # The activities of each referral, found once (an imported file
        # brings hundreds).
        referral_activities = activities.grouped("res_id")
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
            days = WorkingDays(company, fields.Datetime.now())
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
            links = [
                (activity.id, log_id)
                for decision, log_id in engine._write_decisions(decisions, days)
                for activity in referral_activities.get(
                    decision.due.res_id, activities.browse()
                )
            ]
            self._link_activities_to_logs(links)
            engine._schedule_cron(others, company, days.today)

    @api.model
    def _link_activities_to_logs(self, links):
        """Set the log of each activity of ``links`` (``(activity id, log
        id)`` pairs, one log per activity) in one statement, where a write
        per log would cost a call each."""
        if not links:
            return
        Activity = self.env["mail.activity"]
        Activity.flush_model(["followup_log_id"])
        self.env.execute_query(
            SQL(
                """
                UPDATE mail_activity a
                   SET followup_log_id = v.log_id
                  FROM unnest(%s::int[], %s::int[]) AS v(id, log_id)
                 WHERE a.id = v.id
                """,
                [activity_id for activity_id, _log in links],
                [log_id for _activity, log_id in links],
            )
        )
        linked = Activity.browse([activity_id for activity_id, _log in links])
        linked.invalidate_recordset(["followup_log_id"])
        self.env["partner.followup.log"].invalidate_model(["activity_ids"])
        linked.modified(["followup_log_id"])

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
                SELECT a.id, l.res_model, l.res_id, r.trigger, l.id
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
        # The situation the occurrences were about ended: marked so, they may
        # act again if it comes back (a renewal cancelled, a quotation sent
        # again).
        released = defaultdict(list)
        for row in rows:
            released[row[3]].append(row[4])
        for trigger, log_ids in released.items():
            self.env.cr.execute(
                SQL(
                    """UPDATE partner_followup_log
                          SET released = true,
                              reason = %(reason)s,
                              -- What the cron's next pass reads again.
                              write_date = %(now)s
                        WHERE id IN %(ids)s""",
                    now=self.env.cr.now(),
                    reason=self.env._(
                        "activities removed: %(reason)s", reason=reasons[trigger]
                    ),
                    ids=tuple(log_ids),
                )
            )
        self.env["partner.followup.log"].invalidate_model(["released", "reason"])
        bodies = defaultdict(dict)
        for _id, model, res_id, trigger, _log_id in rows:
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
        if (
            trigger == "signal"
            and record._name == "sale.order"
            and record.state != "sent"
        ):
            return self.env._("source closed: the quotation was answered")
        if trigger == "subscription_end" and (
            str(record.subscription_end_date) != due.occurrence
        ):
            return self.env._("source closed: the subscription was renewed")
        return False

    def _read_replies(self, due):
        """{(rule, model, record, occurrence): date} of the first answer of
        the contact's side (``_contact_events_sql``) on the contact or on the
        document after the moment the occurrence counts from (for the
        occurrences without one, the subscription ends: after the first
        step done)."""
        if not due:
            return {}
        partner_ids = tuple({d.partner_id for d in due})
        events = self._contact_events_sql(
            lambda column: SQL("%s IN %s", column, partner_ids)
        )
        self.env.cr.execute(
            SQL(
                """
                WITH due AS (
                    SELECT * FROM unnest(%(rules)s::int[], %(models)s::varchar[],
                                         %(res)s::int[], %(occurrences)s::varchar[],
                                         %(partners)s::int[], %(since)s::timestamp[])
                        AS v(rule_id, res_model, res_id, occurrence, partner_id,
                             since)),
                moments AS (
                    SELECT due.*, COALESCE(due.since, (
                           SELECT min(l.date_done) FROM partner_followup_log l
                            WHERE l.rule_id = due.rule_id
                              AND l.res_model = due.res_model
                              AND l.res_id = due.res_id
                              AND l.occurrence = due.occurrence
                              AND l.company_id = %(company)s
                              AND l.outcome = 'done' AND NOT l.released)) AS moment
                      FROM due)
                SELECT mo.rule_id, mo.res_model, mo.res_id, mo.occurrence,
                       min(e.date)
                  FROM moments mo
                  JOIN (%(events)s) e
                    ON e.partner_id = mo.partner_id AND e.kind = 'answer'
                   AND e.date > mo.moment
                   AND ((e.res_model = mo.res_model AND e.res_id = mo.res_id)
                        OR e.res_model = 'res.partner')
                 GROUP BY mo.rule_id, mo.res_model, mo.res_id, mo.occurrence
                """,
                rules=[d.rule.id for d in due],
                models=[d.res_model for d in due],
                res=[d.res_id for d in due],
                occurrences=[d.occurrence for d in due],
                partners=[d.partner_id for d in due],
                since=[d.since for d in due],
                events=events,
                company=self.env.company.id,
            )
        )
        return {tuple(row[:4]): row[4].date() for row in self.env.cr.fetchall()}

    # ------------------------------------------------------------------
    # Execution: activities, emails and chatter notes in bulk
    # ------------------------------------------------------------------

    def _execute(self, fired, days):
        """``fired``: (decision, log id) pairs whose step fires now."""
        records = self._browse_sources([decision.due for decision, _id in fired])
        partners = (
            self.env["res.partner"]
            .with_context(active_test=False)
            .browse({decision.due.partner_id for decision, _id in fired})
        )
        partners.fetch(["user_id"])
        activity_vals, notes = [], defaultdict(list)
        mails = defaultdict(list)
        responsibles = {}  # log id: (user, reason)
        first_teams = {}
        Users = self.env["res.users"]
        # The activities of a run fall on a few days: each formatted once.
        days_shown = {}

        def shown(day):
            if day not in days_shown:
                days_shown[day] = format_date(self.env, day)
            return days_shown[day]

        for decision, log_id in fired:
            due = decision.due
            record = records[due.res_model, due.res_id]
            partner = partners.browse(due.partner_id).with_prefetch(partners._ids)

            def resolve(template, due=due, record=record, partner=partner, log=log_id):
                user, reason = self._resolve_responsible(
                    template, record, partner, due.rule, first_teams
                )
                responsibles.setdefault(log, (user, reason))
                return user

            plan = due.step.activity_plan_id
            for vals in (
                plan._prepare_scheduled_activities_values(record, days, resolve=resolve)
                if plan
                else []
            ):
                vals["followup_log_id"] = log_id
                activity_vals.append(vals)
                notes[due].append(
                    self.env._(
                        "activity '%(summary)s' for %(user)s, due on %(date)s",
                        summary=vals["summary"]
                        or self.env["mail.activity.type"]
                        .browse(vals["activity_type_id"])
                        .name,
                        user=Users.browse(vals["user_id"]).name,
                        date=shown(vals["date_deadline"]),
                    )
                )
            if plan and responsibles.get(log_id, (None, None))[1] == "none":
                notes[due].append(
                    self.env._("no activity: nobody available to assign it to")
                )
            if due.step.mail_template_id:
                mails[due.step.mail_template_id].append(record.id)
                notes[due].append(
                    self.env._(
                        "email '%(template)s'", template=due.step.mail_template_id.name
                    )
                )
        if activity_vals:
            self._create_activities(activity_vals, {model for model, _id in records})
        if responsibles:
            self._write_responsibles(responsibles)
        for template, res_ids in mails.items():
            self._send_template(template, res_ids)
        self._log_in_chatter(notes, records)

    def _create_activities(self, activity_vals, models):
        # Automated activities: no email to each assignee for each of them.
        self.env["mail.activity"].with_context(mail_activity_quick_update=True).create(
            activity_vals
        )
        for model in models:
            self.env[model].invalidate_model(["activity_ids"])

    def _write_responsibles(self, responsibles):
        """Who got the activities of each log row, and why."""
        ids, users, reasons = zip(
            *(
                (log_id, user.id or None, reason)
                for log_id, (user, reason) in responsibles.items()
            ),
            strict=True,
        )
        self.env.cr.execute(
            SQL(
                """
                UPDATE partner_followup_log l
                   SET responsible_id = v.user_id,
                       responsible_reason = v.reason
                  FROM unnest(%(ids)s::int[], %(users)s::int[],
                              %(reasons)s::varchar[]) AS v(id, user_id, reason)
                 WHERE l.id = v.id
                """,
                ids=list(ids),
                users=list(users),
                reasons=list(reasons),
            )
        )
        self.env["partner.followup.log"].invalidate_model(
            ["responsible_id", "responsible_reason"]
        )

    def _resolve_responsible(self, template, record, partner, rule, first_teams=None):
        """(user, reason) of an activity of ``template`` on ``record`` for the
        commercial entity ``partner``, in the one resolution order of the
        follow-ups: the plan's own responsible (a fixed user, the sponsor's
        salesperson), the document's salesperson (quotation, order,
        referral), the contact's salesperson, the rule's fixed responsible,
        the sales team leader (the document's team, the contact's, its
        salesperson's, the company's first). Archived users, portal users,
        users without access to the company and OdooBot are skipped at each
        level. Nobody: (empty, 'none'). ``first_teams``: a dict the caller
        keeps over a run, the company's first team by company id (searched
        once, not for every activity)."""
        company = self.env.company
        first_teams = {} if first_teams is None else first_teams

        def usable(user):
            user = user.sudo()
            return (
                user
                and user.active
                and not user.share
                # OdooBot (base.user_root)
                and user.id != api.SUPERUSER_ID
                and company in user.company_ids
            )

        def plan_user():
            if template.responsible_type in ("other", "sponsor_salesperson"):
                return template._determine_responsible(False, record)["responsible"]
            return None

        def document_user():
            if record._name != "res.partner" and "user_id" in record._fields:
                return record.user_id
            return None

        def team_leaders():
            teams = self.env["crm.team"]
            if "team_id" in record._fields:
                teams |= record.team_id
            if "team_id" in partner._fields:
                teams |= partner.team_id
            teams |= partner.user_id.sudo().sale_team_id
            if company.id not in first_teams:
                first_teams[company.id] = teams.search(
                    [("company_id", "in", (False, company.id))], limit=1
                )
            teams |= first_teams[company.id]
            return teams.user_id

        levels = (
            ("plan", plan_user),
            ("document", document_user),
            ("contact", lambda: partner.user_id),
            ("rule", lambda: rule.user_id),
            ("team", team_leaders),
        )
        for reason, candidates in levels:
            for user in candidates() or ():
                if usable(user):
                    return user, reason
        return self.env["res.users"], "none"

    def _browse_sources(self, due_steps):
        ids = defaultdict(set)
        for due in due_steps:
            ids[due.res_model].add(due.res_id)
        return {
            (model, record.id): record
            for model, res_ids in ids.items()
            for record in self.env[model]
            .with_context(active_test=False)
            .browse(res_ids)
        }

    def _send_template(self, template, res_ids):
        """One mass-mail composer per template: rendered and queued in
        batch, each email in its recipient's language (the template's body
        compiled once per language and batch of the composer)."""
        composer = (
            self.env["mail.compose.message"]
            .with_context(
                active_test=False,
                **{COMPILE_QWEB_ONCE: True, COMPOSER_BATCH_SIZE: EMAIL_BATCH_SIZE},
            )
            .create(
                {
                    "composition_mode": "mass_mail",
                    "model": template.model,
                    "res_ids": str(sorted(res_ids)),
                    "template_id": template.id,
                    # Queued: the cron never waits for the mail server.
                    "force_send": False,
                }
            )
        )
        composer._action_send_mail()

    def _log_in_chatter(self, notes, records):
        """Say on the contact (and on the document) which rule did what: one
        note per record, as ``_message_log_batch`` logs it."""
        bodies = defaultdict(dict)
        # One title per step, not per note.
        titles = {}
        for due, lines in notes.items():
            if (due.rule, due.step) not in titles:
                titles[due.rule, due.step] = self.env._(
                    "Follow-up rule %(rule)s, step %(step)s:",
                    rule=due.rule.name,
                    step=due.step.name,
                )
            body = Markup("%s<ul>%s</ul>") % (
                titles[due.rule, due.step],
                Markup().join(Markup("<li>%s</li>") % line for line in lines),
            )
            targets = {(due.res_model, due.res_id), ("res.partner", due.partner_id)}
            for model, res_id in targets:
                previous = bodies[model].get(res_id)
                bodies[model][res_id] = previous + body if previous else body
        # The notes _message_log_batch would log, in one statement.
        log_notes(
            self.env,
            [
                (model, res_id, body)
                for model, model_bodies in bodies.items()
                for res_id, body in model_bodies.items()
            ],
        )
