#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the automated follow-ups (``make bench``).

Creates a fresh database (``srl_bench_followups``) with the addon, its
default follow-up rules and no demo data, fills it with set-based SQL
(100,000 contacts and 300,000 orders by default, as ``bench/lifecycle.py``
does), gives some contacts a subscription end date around today and marks
the contacts without a confirmed order as prospects, then times:

- one raw SQL pass finding the records the default rules have due today
  (the floor to compare with);
- the cron loop as ir.cron runs it (the cron method called until the last
  batch, a commit after each call, a fresh cursor every
  ``MAX_BATCH_PER_CRON_JOB`` calls), with detection and execution timed
  apart;
- a second run of the same loop: it must create nothing.

It prints seconds, SQL queries and what was created; it asserts nothing
about times. A quick run: ``make bench BENCH_ARGS="--contacts 2000
--orders 6000"`` (this script takes the same size options as
bench/lifecycle.py).
"""

import argparse
import contextlib
import functools
import importlib
import os
import sys
import time
from collections import Counter, defaultdict
from datetime import timedelta
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

import lifecycle  # noqa: E402  (the data generation and Odoo plumbing)

odoo_run = lifecycle.odoo_run
say = odoo_run.say
ADDON = odoo_run.DEFAULT_ADDON
TARGET_SECONDS = 30
TARGET_RATIO = 10
TARGET_SECOND_RUN = 5
# Engine methods timed one by one.
PHASES = (
    "_detect_due_steps",
    "_arbitrate",
    "_write_decisions",
    "_execute",
)


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--contacts", type=int, default=100_000, help="default: %(default)s"
    )
    parser.add_argument(
        "--orders", type=int, default=300_000, help="default: %(default)s"
    )
    parser.add_argument(
        "--subscribers",
        type=float,
        default=0.06,
        help="share of the commercial entities with a subscription ending "
        "between 30 days ago and 60 days ahead (default: %(default)s)",
    )
    parser.add_argument(
        "--prospects",
        type=float,
        default=0.35,
        help="share of the commercial entities without a confirmed order (but "
        "with a quotation) marked as prospects, the dormant rule's stage "
        "(default: %(default)s)",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=20000,
        help="batch_size given to the cron method (default: %(default)s)",
    )
    parser.add_argument(
        "--db", default="srl_bench_followups", help="default: %(default)s"
    )
    parser.add_argument(
        "--keep", action="store_true", help="keep the database at the end"
    )
    # make bench gives BENCH_ARGS to every benchmark: leave bench/lifecycle.py
    # its own options (--tracking-pass, --profile...).
    args, _others = parser.parse_known_args()
    if args.contacts < 1 or args.orders < 0 or args.batch_size < 1:
        parser.error("--contacts and --batch-size must be positive, --orders >= 0")
    return args


# Data ------------------------------------------------------------------------


SUBSCRIPTIONS_SQL = """
UPDATE res_partner
   SET subscription_end_date = jsonb_build_object(
           (SELECT min(id) FROM res_company)::text,
           CURRENT_DATE + (floor(random() * 91) - 30)::int)
 WHERE id = commercial_partner_id AND referral_code LIKE %(like)s
   AND random() < %(share)s
"""

PROSPECTS_SQL = """
UPDATE res_partner p
   SET lifecycle_stage_id = jsonb_build_object(
           (SELECT min(id) FROM res_company)::text, %(prospect)s)
 WHERE p.id = p.commercial_partner_id AND p.referral_code LIKE %(like)s
   AND EXISTS (SELECT 1 FROM sale_order so WHERE so.partner_id = p.id)
   AND NOT EXISTS (SELECT 1 FROM sale_order so
                    WHERE so.partner_id = p.id AND so.state = 'sale')
   AND random() < %(share)s
"""

LAST_ORDER_SQL = """
UPDATE res_partner p
   SET lifecycle_last_order_date = jsonb_build_object(
           (SELECT min(id) FROM res_company)::text, o.last)
  FROM (SELECT partner_id, max(date_order) AS last FROM sale_order
         WHERE state = 'sale' GROUP BY partner_id) o
 WHERE o.partner_id = p.id
"""


def prepare(registry, args):
    """Subscription ends, prospects and last order dates (what the lifecycle
    cron would have stored), then the statistics."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        prospect = env.ref(f"{ADDON}.stage_prospect").id
        like = lifecycle.CODE_PREFIX + "%"
        for label, query, params in (
            (
                "subscriptions",
                SUBSCRIPTIONS_SQL,
                {"like": like, "share": args.subscribers},
            ),
            (
                "prospects",
                PROSPECTS_SQL,
                {"like": like, "prospect": prospect, "share": args.prospects},
            ),
            ("last orders", LAST_ORDER_SQL, {}),
            ("statistics", "ANALYZE res_partner, sale_order", {}),
        ):
            started = time.perf_counter()
            cr.execute(query, params)
            rows = f"{cr.rowcount:,} rows, " if cr.rowcount > 0 else ""
            say(f"  {label}: {rows}{time.perf_counter() - started:.1f} s")


# Raw pass --------------------------------------------------------------------


def raw_due_query(env):
    """One SQL statement finding the records the default rules have due
    today, with the same date windows (read from the engine's calendar) but
    none of its machinery: no conditions table, no log, no arbitration."""
    from odoo import fields
    from odoo.tools import SQL

    days = engine_module("partner_followup_working_days").FollowupWorkingDays(
        env.company, fields.Datetime.now()
    )
    company = env.company
    parts = []
    for rule in env["partner.followup.rule"].search([]):
        working = rule.delay_type == "working"
        for step in rule._get_steps():
            latest = days.latest_reference(step.delay, working)
            earliest = None
            if rule.max_late_days:
                # The latest reference whose step was due max_late days ago.
                earliest = min(
                    (
                        day
                        for day in (latest - timedelta(days=n) for n in range(400))
                        if days.shift(day, step.delay, working)
                        >= days.today - timedelta(days=rule.max_late_days)
                    ),
                    default=latest,
                )
            window = SQL("BETWEEN %s AND %s", earliest or "1900-01-01", latest)
            if rule.trigger == "quote_sent":
                parts.append(
                    SQL(
                        "SELECT id FROM sale_order WHERE state = 'sent' "
                        "AND date_order::date %s",
                        window,
                    )
                )
            elif rule.trigger == "order_confirmed":
                parts.append(
                    SQL(
                        """SELECT DISTINCT ON (partner_id) id FROM sale_order
                            WHERE state = 'sale' AND date_order::date %s
                              AND NOT EXISTS (SELECT 1 FROM sale_order o2
                                   WHERE o2.partner_id = sale_order.partner_id
                                     AND o2.state = 'sale'
                                     AND o2.date_order < sale_order.date_order)""",
                        window,
                    )
                )
            elif rule.trigger == "subscription_end":
                parts.append(
                    SQL(
                        "SELECT id FROM res_partner WHERE "
                        "(subscription_end_date->>%s)::date + %s %s",
                        str(company.id),
                        step.delay,
                        SQL(
                            "BETWEEN %s AND %s",
                            days.today - timedelta(days=rule.max_late_days or 9999),
                            days.today,
                        ),
                    )
                )
            elif rule.trigger == "dormant":
                parts.append(
                    SQL(
                        """SELECT id FROM res_partner
                            WHERE (lifecycle_stage_id->>%s)::int IN %s
                              AND GREATEST(create_date::date,
                                  COALESCE((lifecycle_last_order_date->>%s)
                                           ::timestamp::date,
                                           '1900-01-01')) <= %s""",
                        str(company.id),
                        tuple(rule.stage_ids.ids),
                        str(company.id),
                        latest,
                    )
                )
    return SQL("SELECT count(*) FROM (%s) due", SQL(" UNION ALL ").join(parts))


def engine_module(name):
    """A module of the addon's models (importable once Odoo is loaded)."""
    return importlib.import_module(f"odoo.addons.{ADDON}.models.{name}")


def time_raw_pass(registry, runs=3):
    from odoo import SUPERUSER_ID, api

    times = []
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        query = raw_due_query(env)
        for _run in range(runs):
            started = time.perf_counter()
            cr.execute(query)
            count = cr.fetchone()[0]
            times.append(time.perf_counter() - started)
    return times, count


# Cron loop -------------------------------------------------------------------


class PhaseTimer:
    """Wall time and calls of engine methods, wrapped on the registry's class
    for the length of a run."""

    def __init__(self, registry):
        self.model_class = registry["partner.followup.engine"]
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.sizes = defaultdict(int)
        self.triggers = defaultdict(float)

    def _wrap(self, name, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1
            if name == "_detect_due_steps":
                self.sizes[name] += len(result)
            return result

        return timed

    def _wrap_step(self, method):
        """Detection time per trigger."""

        @functools.wraps(method)
        def timed(engine, rule, *args, **kwargs):
            started = time.perf_counter()
            try:
                return method(engine, rule, *args, **kwargs)
            finally:
                self.triggers[rule.trigger] += time.perf_counter() - started

        return timed

    def __enter__(self):
        self.saved = {
            name: vars(self.model_class).get(name) for name in (*PHASES, "_detect_step")
        }
        self.model_class._detect_step = self._wrap_step(self.model_class._detect_step)
        for name in PHASES:
            setattr(
                self.model_class,
                name,
                self._wrap(name, getattr(self.model_class, name)),
            )
        return self

    def __exit__(self, *exc_info):
        for name, own in self.saved.items():
            if own is None:
                delattr(self.model_class, name)
            else:
                setattr(self.model_class, name, own)


def counts(registry):
    with registry.cursor() as cr:
        cr.execute(
            """SELECT (SELECT count(*) FROM partner_followup_log),
                      (SELECT count(*) FROM mail_activity),
                      (SELECT count(*) FROM mail_mail),
                      (SELECT count(*) FROM mail_message)"""
        )
        return dict(
            zip(
                ("logs", "activities", "emails", "messages"), cr.fetchone(), strict=True
            )
        )


def cron_loop(registry, batch_size):
    """Call the cron method until the last batch, as ir.cron's runner does."""
    from odoo import SUPERUSER_ID, api

    from odoo.addons.base.models.ir_cron import MAX_BATCH_PER_CRON_JOB

    cursor_key = engine_module("partner_followup_engine").FOLLOWUP_CRON_CURSOR
    calls = queries = 0
    stats = Counter()
    done = False
    started = time.perf_counter()
    while not done:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            for _call in range(MAX_BATCH_PER_CRON_JOB):
                before = cr.sql_log_count
                stats.update(
                    env["partner.followup.engine"]._cron_run_followups(
                        batch_size=batch_size
                    )
                )
                cr.commit()  # pylint: disable=invalid-commit
                queries += cr.sql_log_count - before
                calls += 1
                if env["ir.config_parameter"].get_param(cursor_key, "0") == "0":
                    done = True
                    break
    return time.perf_counter() - started, calls, queries, stats


def run_pass(registry, title, args):
    before = counts(registry)
    with PhaseTimer(registry) as phases:
        seconds, calls, queries, stats = cron_loop(registry, args.batch_size)
    after = counts(registry)
    created = {key: after[key] - before[key] for key in after}
    say(
        "",
        title,
        f"  time                 {seconds:10.2f} s",
        f"  cron calls           {calls:10d}  (batch_size={args.batch_size})",
        f"  SQL queries          {queries:10,d}  ({queries / calls:.0f} per call)",
        f"  due steps detected   {phases.sizes['_detect_due_steps']:10,d}",
        f"  outcomes             done {stats['done']:,}, postponed "
        f"{stats['postponed']:,}, skipped {stats['skipped']:,}",
        f"  created              {created['logs']:,} log rows, "
        f"{created['activities']:,} activities, {created['emails']:,} emails, "
        f"{created['messages']:,} messages",
        "  detection by trigger: "
        + ", ".join(f"{t} {s:.2f} s" for t, s in sorted(phases.triggers.items())),
        "  time by method:",
    )
    for name in PHASES:
        say(
            f"    {name:24s} {phases.seconds[name]:8.2f} s "
            f"{phases.calls[name]:6d} calls"
        )
    return {
        "seconds": seconds,
        "queries": queries,
        "detected": phases.sizes["_detect_due_steps"],
        "detection": phases.seconds["_detect_due_steps"],
        "execution": phases.seconds["_execute"],
        "created": created,
    }


# Main ------------------------------------------------------------------------


def benchmark(ctx, args):
    lifecycle.install(ctx, args.db)
    registry = lifecycle.open_registry(ctx, args.db)
    say("", f"Generating {args.contacts:,} contacts and {args.orders:,} orders ...")
    started = time.perf_counter()
    lifecycle.generate(registry, args.contacts, args.orders)
    prepare(registry, args)
    say(f"Generated in {time.perf_counter() - started:.1f} s.")

    raw_times, raw_count = time_raw_pass(registry)
    raw = min(raw_times)
    say(
        "",
        "Raw SQL pass finding the records due today (one statement):",
        f"  time                 {raw:10.3f} s  (best of {len(raw_times)}: "
        + ", ".join(f"{t:.3f}" for t in raw_times)
        + f"; {raw_count:,} due records)",
    )
    first = run_pass(registry, "First run (cron loop, default rules):", args)
    second = run_pass(registry, "Second run (the same cron loop again):", args)
    verdicts = [
        first["seconds"] < TARGET_SECONDS,
        first["seconds"] / raw < TARGET_RATIO,
        second["seconds"] < TARGET_SECOND_RUN and not any(second["created"].values()),
    ]
    say(
        "",
        "Summary",
        f"  first run            {first['seconds']:10.2f} s   "
        f"{first['queries']:,} queries   {first['detected']:,} due steps",
        f"    detection          {first['detection']:10.2f} s",
        f"    execution          {first['execution']:10.2f} s",
        f"  raw SQL pass         {raw:10.3f} s   {raw_count:,} due records",
        f"  ratio first / raw    {first['seconds'] / raw:10.1f} x",
        f"  second run           {second['seconds']:10.2f} s   "
        f"{second['queries']:,} queries   created "
        f"{sum(second['created'].values())} records",
        f"  targets              under {TARGET_SECONDS} s: "
        f"{'met' if verdicts[0] else 'MISSED'}; within {TARGET_RATIO}x of raw: "
        f"{'met' if verdicts[1] else 'MISSED'}; second run under "
        f"{TARGET_SECOND_RUN} s creating nothing: "
        f"{'met' if verdicts[2] else 'MISSED'} ({os.cpu_count()} CPUs here)",
    )
    return 0


def main():
    return lifecycle.run_main(benchmark, parse_args())


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
