#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the automated follow-ups (``make bench``).

Creates a fresh database (``srl_bench_followups``) with the addon, its
default follow-up rules and no demo data, fills it with set-based SQL
(100,000 contacts and 300,000 orders by default, the data of
bench/lifecycle.py), gives some contacts a subscription end date around
today and marks the contacts without a confirmed order as prospects, then
times:

- one raw SQL pass finding the records the default rules have due today
  (the floor to compare with);
- the cron loop as ir.cron runs it (the cron method called until the last
  batch, a commit after each call, a fresh cursor every
  ``MAX_BATCH_PER_CRON_JOB`` calls), with detection and execution timed
  apart;
- a second run of the same loop: it must create nothing.

It prints seconds, SQL queries and what was created; it asserts nothing
about times. The database is dropped at the end unless ``--keep``. A quick
run: ``python3 bench/followups.py --contacts 2000 --orders 6000`` (the same
size options as bench/lifecycle.py).
"""

import contextlib
import cProfile
import os
from collections import Counter
from datetime import timedelta

import benchlib
from benchlib import ADDON, say

TARGET_SECONDS = 15
# Detection (the engine's, first run) against the raw SQL pass.
TARGET_RATIO = 10
# A run with nothing due.
TARGET_SECOND_RUN = 1
# Engine methods timed one by one, with the due steps detected; the detection
# is timed per trigger too.
PHASES = {
    "_detect_due_steps": lambda args, result: len(result),
    "_detect_step": None,
    "_arbitrate": None,
    "_write_decisions": None,
    "_execute": None,
    "_create_activities": None,
    "_send_template": None,
    "_log_in_chatter": None,
}
BY_TRIGGER = {"_detect_step": lambda args: args[1].trigger}


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_bench_followups")
    parser.add_argument("--contacts", type=int, default=100_000, help="%(default)s")
    parser.add_argument("--orders", type=int, default=300_000, help="%(default)s")
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
        "--profile",
        action="store_true",
        help="run the passes under cProfile and print the top functions "
        "(the times then include the profiler's overhead)",
    )
    parser.add_argument("--profile-top", type=int, default=25, help="%(default)s")
    args = benchlib.parse_args(parser)
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


# The rules and the company's calendar were set up before the runs timed (the
# incremental pass reads again, in full, a rule written since the last run).
CONFIG_AGE_SQL = """
UPDATE {table} SET write_date = now() AT TIME ZONE 'UTC' - interval '1 day'
"""
CONFIG_TABLES = (
    "partner_followup_rule",
    "partner_followup_step",
    "res_company",
    "resource_calendar_leaves",
    "resource_calendar_attendance",
    "crm_team_member",
)


def prepare(registry, args):
    """Subscription ends, prospects and last order dates (what the lifecycle
    cron would have stored), then the statistics."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        prospect = env.ref(f"{ADDON}.stage_prospect").id
        like = benchlib.CODE_PREFIX + "%"
        benchlib.execute_steps(
            cr,
            [
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
                *(
                    (f"{table} set up", CONFIG_AGE_SQL.format(table=table), {})
                    for table in CONFIG_TABLES
                ),
                ("statistics", "ANALYZE res_partner, sale_order", {}),
            ],
        )


# Raw pass --------------------------------------------------------------------


def raw_due_query(env):
    """One SQL statement finding the records the default rules have due
    today, with the same date windows (read from the engine's calendar) but
    none of its machinery: no conditions table, no log, no arbitration."""
    from odoo import fields
    from odoo.tools import SQL

    days = benchlib.addon_attr("WorkingDays")(env.company, fields.Datetime.now())
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


def count_due(env, query):
    env.cr.execute(query)
    return env.cr.fetchone()[0]


# Cron loop -------------------------------------------------------------------


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


def run_pass(registry, title, args):
    cursor_key = benchlib.addon_attr("FOLLOWUP_CRON_CURSOR")
    stats = Counter()

    def job(env):
        engine = env["partner.followup.engine"]
        stats.update(engine._cron_run_followups(batch_size=args.batch_size))
        return env["ir.config_parameter"].get_param(cursor_key, "0") != "0"

    before = counts(registry)
    phases = benchlib.MethodTimer(
        registry, "partner.followup.engine", PHASES, by=BY_TRIGGER
    )
    profiler = cProfile.Profile() if args.profile else contextlib.nullcontext()
    with phases, profiler:
        loop = benchlib.cron_loop(registry, job)
    after = counts(registry)
    created = {key: after[key] - before[key] for key in after}
    calls = len(loop.call_seconds)
    triggers = sorted((key, s) for (_name, key), s in phases.seconds_by.items())
    figure = benchlib.figure
    say(
        "",
        f"{title}{' (under cProfile)' if args.profile else ''}",
        figure("time", f"{loop.seconds:10.2f} s"),
        figure("cron calls", f"{calls:10d}  (batch_size={args.batch_size})"),
        figure(
            "SQL queries", f"{loop.queries:10,d}  ({loop.queries / calls:.0f} per call)"
        ),
        figure("due steps detected", f"{phases.sizes['_detect_due_steps']:10,d}"),
        figure(
            "outcomes",
            f"done {stats['done']:,}, postponed {stats['postponed']:,}, "
            f"skipped {stats['skipped']:,}",
        ),
        figure(
            "created",
            f"{created['logs']:,} log rows, {created['activities']:,} activities, "
            f"{created['emails']:,} emails, {created['messages']:,} messages",
        ),
        "  detection by trigger: "
        + ", ".join(f"{trigger} {seconds:.2f} s" for trigger, seconds in triggers),
        "  time by method:",
    )
    for name in PHASES:
        if name != "_detect_step":
            say(
                f"    {name:24s} {phases.seconds[name]:8.2f} s "
                f"{phases.calls[name]:6d} calls"
            )
    if args.profile:
        benchlib.print_profile(profiler, args.profile_top)
    return {
        "seconds": loop.seconds,
        "queries": loop.queries,
        "detected": phases.sizes["_detect_due_steps"],
        "detection": phases.seconds["_detect_due_steps"],
        "execution": phases.seconds["_execute"],
        "created": created,
    }


# Main ------------------------------------------------------------------------


def benchmark(args):
    from odoo import SUPERUSER_ID, api

    benchlib.install(args.db)
    registry = benchlib.open_registry(args.db)
    say("", f"Generating {args.contacts:,} contacts and {args.orders:,} orders ...")
    with benchlib.Stopwatch() as watch:
        benchlib.generate(registry, args.contacts, args.orders)
        prepare(registry, args)
    say(f"Generated in {watch.seconds:.1f} s.")
    with registry.cursor() as cr:
        query = raw_due_query(api.Environment(cr, SUPERUSER_ID, {}))
    runs = benchlib.timed_runs(registry, lambda env: count_due(env, query))
    raw, raw_count = min(run.seconds for run in runs), runs[0].result
    say(
        "",
        "Raw SQL pass finding the records due today (one statement):",
        benchlib.figure(
            "time",
            f"{raw:10.3f} s  (best of {len(runs)}: "
            + ", ".join(f"{run.seconds:.3f}" for run in runs)
            + f"; {raw_count:,} due records)",
        ),
    )
    first = run_pass(registry, "First run (cron loop, default rules):", args)
    second = run_pass(registry, "Second run (the same cron loop again):", args)
    verdicts = [
        first["seconds"] < TARGET_SECONDS,
        first["detection"] / raw < TARGET_RATIO,
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
        f"  detection / raw      {first['detection'] / raw:10.1f} x",
        f"  second run           {second['seconds']:10.2f} s   "
        f"{second['queries']:,} queries   created "
        f"{sum(second['created'].values())} records",
        f"  targets              under {TARGET_SECONDS} s: "
        f"{benchlib.verdict(verdicts[0])}; detection within {TARGET_RATIO}x "
        f"of raw: "
        f"{benchlib.verdict(verdicts[1])}; second run under "
        f"{TARGET_SECOND_RUN} s creating nothing: "
        f"{benchlib.verdict(verdicts[2])} ({os.cpu_count()} CPUs here)",
    )
    return 0


def main():
    return benchlib.run(benchmark, parse_args())


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
