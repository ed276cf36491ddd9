#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the customer lifecycle recompute (``make bench``).

Creates a fresh database (``srl_bench``) with the addon and no demo data,
fills it with set-based SQL (100,000 contacts and 300,000 orders by default,
one order line each), then times, in this process:

- one raw SQL aggregate over the same orders (the floor to compare with);
- the full recompute as the nightly cron does it: the cron method called
  until it returns 0, a commit after each call, a fresh cursor every
  ``MAX_BATCH_PER_CRON_JOB`` calls (every contact gets its first stage);
- a steady-state pass: the same loop again (the data did not change): the
  cron recomputes only the contacts whose time windows or data changed since
  its last run;
- a night later: the same loop with the clock moved 24 hours on (orders
  leaving the stages' windows and subscriptions ending over one day);
- with ``--tracking-pass``: every contact put back in the first stage, then
  the same loop (nearly every contact moves, with a chatter message each);
- the storage's floor, after the full recompute, each statement rolled
  back: one raw UPDATE rewriting every commercial entity's row of
  ``res_partner`` (what any placement that stores the stage on the contact
  costs at least: PostgreSQL writes a new version of each row, and an entry
  in each of the table's indexes), and one raw INSERT of a history row per
  commercial entity (what recording every first stage costs).

It prints seconds, contacts per second, SQL queries, moves and where the
time goes inside the engine; it asserts nothing about times. The database is
dropped at the end unless ``--keep``. A quick run:
``python3 bench/lifecycle.py --contacts 2000 --orders 6000``.
"""

import contextlib
import cProfile
import datetime
import os

import benchlib
from benchlib import say

# The targets: full placement under 8 s and within 15x of the raw aggregate,
# steady state under 1 s.
TARGET_FULL_SECONDS = 8
TARGET_FULL_RATIO = 15
TARGET_STEADY_SECONDS = 1
# Methods of partner.lifecycle.engine timed one by one (where the time goes),
# with what some of them process: contacts recomputed, contacts written
# (stage or aggregates changed), moves, moves logged in the chatter.
PHASES = {
    "_lifecycle_candidate_ids": None,
    "_recompute": lambda args, result: len(args[1]),
    "_read_stats": None,
    "_match_domains": None,
    "_write_stats": lambda args, result: len(args[1]),
    "_move": lambda args, result: len(args[1]),
    "_log_tracking": lambda args, result: len(args[1]),
}


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_bench")
    parser.add_argument("--contacts", type=int, default=100_000, help="%(default)s")
    parser.add_argument("--orders", type=int, default=300_000, help="%(default)s")
    parser.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        help="batch_size given to the cron method (default: %(default)s)",
    )
    parser.add_argument(
        "--tracking-pass",
        action="store_true",
        help="also time a pass where nearly every contact moves with a chatter "
        "message",
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


def figures(registry):
    """What a pass changes: history rows, chatter messages on contacts (and
    the size of the data)."""
    with registry.cursor() as cr:
        cr.execute(
            """
            SELECT (SELECT count(*) FROM res_partner WHERE parent_id IS NULL),
                   (SELECT count(*) FROM sale_order),
                   (SELECT count(*) FROM sale_order_line),
                   (SELECT count(*) FROM partner_lifecycle_history),
                   (SELECT count(*) FROM mail_message WHERE model = 'res.partner')
            """
        )
        return dict(
            zip(
                ("commercial", "orders", "lines", "history", "messages"),
                cr.fetchone(),
                strict=True,
            )
        )


def stage_distribution(registry):
    with registry.cursor() as cr:
        cr.execute(
            """
            SELECT COALESCE(s.name->>'en_US', '(none)'), count(p.id)
              FROM res_partner p
              -- The stages in the main company (the orders' company here).
              LEFT JOIN partner_lifecycle_stage s
                     ON s.id = (p.lifecycle_stage_id
                                ->> (SELECT min(id) FROM res_company)::text)::int
             WHERE p.parent_id IS NULL
             GROUP BY s.name, s.sequence
             ORDER BY s.sequence NULLS FIRST
            """
        )
        return cr.fetchall()


# Measures --------------------------------------------------------------------


RAW_AGGREGATE_SQL = """
SELECT p.commercial_partner_id, count(*), max(so.date_order),
       sum(so.amount_untaxed)
  FROM sale_order so
  JOIN res_partner p ON p.id = so.partner_id
 GROUP BY 1
"""


def raw_aggregate(env):
    env.cr.execute(RAW_AGGREGATE_SQL)
    return len(env.cr.fetchall())


# The storage's floor (rolled back): a new version of every commercial
# entity's row, no value changed (PostgreSQL writes it all the same), and a
# history row each.
RAW_REWRITE_SQL = """
UPDATE res_partner SET lifecycle_stage_id = lifecycle_stage_id
 WHERE id = commercial_partner_id
"""
RAW_HISTORY_SQL = """
INSERT INTO partner_lifecycle_history (
    partner_id, from_stage_id, to_stage_id, date, automatic, user_id,
    first_contact_source_id, company_id)
SELECT p.id, NULL, (p.lifecycle_stage_id->>c.id::text)::int, now(), true, 1,
       (p.first_contact_source_id->>c.id::text)::int, c.id
  FROM res_partner p
  JOIN res_company c ON c.id = (SELECT min(id) FROM res_company)
 WHERE p.id = p.commercial_partner_id
   AND p.lifecycle_stage_id ? c.id::text
"""


def raw_statement(sql):
    def call(env):
        env.cr.execute(sql)
        return env.cr.rowcount

    return call


def storage_floor(registry):
    """The best of 3 (rolled back) of the rewrite and the history insert."""
    floor = {}
    for key, sql in (("rewrite", RAW_REWRITE_SQL), ("history", RAW_HISTORY_SQL)):
        runs = benchlib.timed_runs(registry, raw_statement(sql))
        floor[key] = min(run.seconds for run in runs)
        floor[f"{key}_rows"] = runs[0].result
        floor[f"{key}_runs"] = [run.seconds for run in runs]
    return floor


@contextlib.contextmanager
def clock_moved(delta):
    """Odoo's clock (``fields.Datetime.now``) ``delta`` later, as on a
    later night; the database's clock (write dates) is untouched."""
    from unittest.mock import patch

    from odoo import fields

    real_now = fields.Datetime.now
    with patch.object(
        fields.Datetime, "now", staticmethod(lambda *args: real_now() + delta)
    ):
        yield


def run_pass(registry, title, args):
    """One timed pass of the cron loop; print and return its figures."""
    before = figures(registry)
    profiler = cProfile.Profile() if args.profile else contextlib.nullcontext()
    phases = benchlib.MethodTimer(registry, "partner.lifecycle.engine", PHASES)
    with phases, profiler:
        loop = benchlib.cron_loop(
            registry,
            lambda env: env["partner.lifecycle.engine"]._cron_recompute(
                batch_size=args.batch_size
            ),
        )
    after = figures(registry)
    processed = phases.sizes["_recompute"]
    calls = len(loop.call_seconds)
    say(
        "",
        f"{title}{' (under cProfile)' if args.profile else ''}",
        benchlib.figure("time", f"{loop.seconds:10.2f} s"),
        benchlib.figure("contacts", f"{processed:10,d}"),
        benchlib.figure("contacts/s", f"{processed / loop.seconds:10,.0f}"),
        benchlib.figure(
            "cron calls",
            f"{calls:10d}  (batch_size={args.batch_size}; slowest "
            f"{max(loop.call_seconds):.2f} s, fastest {min(loop.call_seconds):.2f} s)",
        ),
        benchlib.figure(
            "SQL queries", f"{loop.queries:10,d}  ({loop.queries / calls:.0f} per call)"
        ),
        benchlib.figure(
            "contacts written",
            f"{phases.sizes['_write_stats']:10,d}  (stage or aggregates changed)",
        ),
        benchlib.figure(
            "stage moves",
            f"{after['history'] - before['history']:10,d}  (history rows)",
        ),
        benchlib.figure(
            "chatter messages", f"{after['messages'] - before['messages']:10,d}"
        ),
        "  time by method (wall, nested calls counted in their callers too):",
    )
    for name in PHASES:
        if phases.calls[name]:
            say(
                f"    {name:36s} {phases.seconds[name]:8.2f} s "
                f"{phases.calls[name]:6d} calls"
            )
    outside = (
        loop.seconds
        - phases.seconds["_recompute"]
        - phases.seconds["_lifecycle_candidate_ids"]
        - loop.commit_seconds
    )
    say(
        f"    {'commit (flushes pending ORM writes)':36s} {loop.commit_seconds:8.2f} s",
        f"    {'rest (cron params, search and count)':36s} {outside:8.2f} s",
    )
    if args.profile:
        benchlib.print_profile(profiler, args.profile_top)
    return {"seconds": loop.seconds, "contacts": processed, "queries": loop.queries}


def reset_cursor(registry, full=False):
    """Next cron call from the first contact (a finished pass already is);
    ``full``: forget the last run too, the next pass is a full one."""
    keys = [benchlib.addon_attr("LIFECYCLE_CRON_CURSOR")]
    if full:
        keys.append(benchlib.addon_attr("LIFECYCLE_CRON_LAST_RUN"))
    with registry.cursor() as cr:
        cr.execute("DELETE FROM ir_config_parameter WHERE key = ANY(%s)", [keys])


def reset_to_first_stage(registry):
    """Every contact back in the first stage: the next pass moves nearly all
    of them, each with a tracking message (a full pass: the stages were
    changed in SQL, behind the cron's back)."""
    reset_cursor(registry, full=True)
    with registry.cursor() as cr:
        cr.execute(
            """
            UPDATE res_partner
               SET lifecycle_stage_id = jsonb_build_object(
                       (SELECT min(id) FROM res_company)::text,
                       (SELECT id FROM partner_lifecycle_stage
                         ORDER BY sequence, id LIMIT 1))
             WHERE parent_id IS NULL
            """
        )
        cr.execute("ANALYZE res_partner")


# Main ------------------------------------------------------------------------


def benchmark(args):
    benchlib.install(args.db)
    registry = benchlib.open_registry(args.db)
    say("", f"Generating {args.contacts:,} contacts and {args.orders:,} orders ...")
    with benchlib.Stopwatch() as watch:
        benchlib.generate(registry, args.contacts, args.orders)
    say(f"Generated in {watch.seconds:.1f} s.")
    counts = figures(registry)
    say(
        f"Database {args.db}: {counts['commercial']:,} commercial entities, "
        f"{counts['orders']:,} orders, {counts['lines']:,} order lines."
    )
    runs = benchlib.timed_runs(registry, raw_aggregate)
    raw = min(run.seconds for run in runs)
    say(
        "",
        "Raw SQL aggregate over the same orders (count, max date, sum by "
        "commercial entity):",
        benchlib.figure(
            "time",
            f"{raw:10.3f} s  (best of {len(runs)}: "
            + ", ".join(f"{run.seconds:.3f}" for run in runs)
            + f"; {runs[0].result:,} groups)",
        ),
    )

    full = run_pass(
        registry, "Full recompute (cron loop, every contact gets a stage):", args
    )
    say("  stages after it:")
    for name, count in stage_distribution(registry):
        say(f"    {name:20s} {count:10,d}")

    floor = storage_floor(registry)
    say(
        "",
        "The storage's floor (raw statements, each rolled back, best of 3):",
        benchlib.figure(
            "rewrite every row",
            f"{floor['rewrite']:10.3f} s  ({floor['rewrite_rows']:,} rows of "
            "res_partner; "
            + ", ".join(f"{seconds:.3f}" for seconds in floor["rewrite_runs"])
            + ")",
        ),
        benchlib.figure(
            "a history row each",
            f"{floor['history']:10.3f} s  ({floor['history_rows']:,} rows; "
            + ", ".join(f"{seconds:.3f}" for seconds in floor["history_runs"])
            + ")",
        ),
    )

    reset_cursor(registry)
    steady = run_pass(
        registry,
        "Steady state (the same cron loop again, nothing changed):",
        args,
    )
    with clock_moved(datetime.timedelta(days=1)):
        night = run_pass(
            registry,
            "A night later (clock moved 24 h on: windows crossed over one day):",
            args,
        )
    tracking = None
    if args.tracking_pass:
        reset_to_first_stage(registry)
        tracking = run_pass(
            registry,
            "Tracking pass (every contact back in the first stage, cron loop):",
            args,
        )

    verdict = benchlib.verdict
    summary = [
        "",
        "Summary",
        f"  full recompute       {full['seconds']:10.2f} s   "
        f"{full['contacts'] / full['seconds']:10,.0f} contacts/s   "
        f"{full['queries']:,} queries",
        f"  raw SQL aggregate    {raw:10.3f} s",
        f"  ratio full / raw     {full['seconds'] / raw:10.1f} x",
        f"  storage floor        {floor['rewrite'] + floor['history']:10.2f} s   "
        f"rewrite {floor['rewrite']:.2f} s + history {floor['history']:.2f} s: "
        f"{(floor['rewrite'] + floor['history']) / raw:.1f}x the raw aggregate "
        "before reading anything",
        f"  steady-state pass    {steady['seconds']:10.3f} s   "
        f"{steady['contacts']:10,d} contacts     "
        f"{steady['queries']:,} queries",
        f"  ratio steady / raw   {steady['seconds'] / raw:10.2f} x",
        f"  a night later        {night['seconds']:10.3f} s   "
        f"{night['contacts']:10,d} contacts     "
        f"{night['queries']:,} queries",
        f"  ratio night / raw    {night['seconds'] / raw:10.2f} x",
    ]
    if tracking:
        summary.append(
            f"  tracking pass        {tracking['seconds']:10.2f} s   "
            f"{tracking['contacts'] / tracking['seconds']:10,.0f} contacts/s   "
            f"{tracking['queries']:,} queries"
        )
    summary += [
        f"  target               full recompute under {TARGET_FULL_SECONDS} s: "
        f"{verdict(full['seconds'] < TARGET_FULL_SECONDS)}; within "
        f"{TARGET_FULL_RATIO}x of the raw aggregate: "
        f"{verdict(full['seconds'] / raw <= TARGET_FULL_RATIO)}",
        f"  target               steady state under {TARGET_STEADY_SECONDS} s: "
        f"{verdict(steady['seconds'] < TARGET_STEADY_SECONDS)} (a night later: "
        f"{verdict(night['seconds'] < TARGET_STEADY_SECONDS)})",
        f"  ({os.cpu_count()} CPUs here{', under cProfile' if args.profile else ''})",
    ]
    say(*summary)
    return 0


def main():
    return benchlib.run(benchmark, parse_args())


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
