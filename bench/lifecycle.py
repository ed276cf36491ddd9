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
  its last run (``models/partner_lifecycle_cron.py``);
- a night later: the same loop with the clock moved 24 hours on (orders
  leaving the stages' windows and subscriptions ending over one day);
- with ``--tracking-pass``: every contact put back in the first stage, then
  the same loop (nearly every contact moves, with a chatter message each).

It prints seconds, contacts per second, SQL queries, moves and where the
time goes inside the engine; it asserts nothing about times. The database is
dropped at the end unless ``--keep``. Odoo and PostgreSQL are found as for
``make test`` (dev/odoo_run.py). A quick run:
``make bench BENCH_ARGS="--contacts 2000 --orders 6000"``.
"""

import argparse
import contextlib
import cProfile
import datetime
import functools
import importlib
import io
import os
import pstats
import signal
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "dev"))

import odoo_run  # noqa: E402  (dev/ is not a package)

ADDON = odoo_run.DEFAULT_ADDON
# Generated referral codes: "B0" and 8 digits. The addon's codes never hold a
# "0" (see CODE_ALPHABET), so these cannot collide with them.
CODE_PREFIX = "B0"
ORDER_PREFIX = "BENCH/"
# Issue 12's targets: full placement under 8 s and within 15x of the raw
# aggregate, steady state under 1 s.
TARGET_FULL_SECONDS = 8
TARGET_FULL_RATIO = 15
TARGET_STEADY_SECONDS = 1
# Methods of partner.lifecycle.engine timed one by one (where the time goes).
PHASES = (
    "_lifecycle_candidate_ids",
    "_recompute",
    "_read_stats",
    "_match_domains",
    "_write_stats",
    "_move",
    "_log_tracking",
)
# What the calls of some of them process: contacts recomputed, contacts
# written (stage or aggregates changed), moves, moves logged in the chatter.
PHASE_SIZES = {
    "_recompute": lambda engine, partners, *args: len(partners),
    "_write_stats": lambda engine, changes, *args: len(changes),
    "_move": lambda engine, moves, *args: len(moves),
    "_log_tracking": lambda engine, moves, *args: len(moves),
}

say = odoo_run.say


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--contacts", type=int, default=100_000, help="default: %(default)s"
    )
    parser.add_argument(
        "--orders", type=int, default=300_000, help="default: %(default)s"
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=5000,
        help="batch_size given to the cron method (default: %(default)s)",
    )
    parser.add_argument("--db", default="srl_bench", help="default: %(default)s")
    parser.add_argument(
        "--keep", action="store_true", help="keep the database at the end"
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
    parser.add_argument(
        "--profile-top", type=int, default=25, help="default: %(default)s"
    )
    args = parser.parse_args()
    if args.contacts < 1 or args.orders < 0 or args.batch_size < 1:
        parser.error("--contacts and --batch-size must be positive, --orders >= 0")
    return args


# Database --------------------------------------------------------------------


def install(ctx, dbname, modules=ADDON):
    """Create ``dbname`` with ``modules`` (default: the addon) installed and
    no demo data, as ``make test`` does (a separate ``python -m odoo``
    process)."""
    ctx.pg.drop_database(dbname)
    ctx.pg.create_database(dbname)
    command = odoo_run.odoo_command(
        ctx,
        dbname,
        f"--init={modules}",
        "--without-demo=all",
        "--stop-after-init",
        "--max-cron-threads=0",
        "--http-interface=127.0.0.1",
        f"--http-port={odoo_run.free_port()}",
        "--log-level=warn",
    )
    log_path = odoo_run.CACHE / f"bench-{dbname}.log"
    say(f"Installing {modules} without demo data in {dbname} (log in {log_path}) ...")
    started = time.perf_counter()
    status = odoo_run.run_odoo(ctx, command, log_path)
    if status:
        raise odoo_run.Abort(f"Installing {modules} failed (status {status}).")
    say(f"Installed in {time.perf_counter() - started:.1f} s.")


def refuse_if_in_use(pg, dbname):
    """Stop before recreating a database that another session uses (another
    benchmark running, or someone looking at a kept one)."""
    with pg.refusals("list the sessions"):
        conn = pg.connect()
    with conn, conn.cursor() as cr:
        cr.execute(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = %s AND pid != pg_backend_pid()",
            [dbname],
        )
        sessions = cr.fetchone()[0]
    conn.close()
    if sessions:
        raise odoo_run.Abort(
            f"The database {dbname} is in use ({sessions} session(s): another "
            "benchmark?). Wait for it, or choose another name with --db NAME."
        )


def open_registry(ctx, dbname):
    """Load Odoo in this process, configured as the install was."""
    src = ctx.env.get("ODOO_SRC")
    if src and src not in sys.path:
        sys.path.insert(0, src)
    import odoo
    from odoo.modules.registry import Registry

    odoo.tools.config.parse_config(
        [
            f"--config={odoo_run.config_file()}",
            f"--addons-path={ctx.addons_path}",
            f"--data-dir={odoo_run.CACHE / 'data'}",
            f"--database={dbname}",
            "--max-cron-threads=0",
            "--log-level=warn",
            *ctx.pg.odoo_args,
        ]
    )
    return Registry(dbname)


def close_registry(dbname):
    if "odoo" not in sys.modules:
        return
    from odoo import sql_db
    from odoo.modules.registry import Registry

    Registry.delete(dbname)
    sql_db.close_db(dbname)


# Data ------------------------------------------------------------------------


CONTACTS_SQL = """
INSERT INTO res_partner (
    id, commercial_partner_id, name, complete_name, commercial_company_name,
    email, active, type, is_company, company_id, lang, partner_share,
    autopost_bills, customer_rank, supplier_rank, color, referral_code,
    create_uid, write_uid, create_date, write_date)
SELECT s.id, s.id, s.name, s.name, CASE WHEN s.is_company THEN s.name END,
       'contact' || s.g || '@bench.example.com', true, 'contact', s.is_company,
       NULL, 'en_US', true, 'ask', 1, 0, 0, %(prefix)s || lpad(s.g::text, 8, '0'),
       %(uid)s, %(uid)s, s.created, s.created
  FROM (SELECT nextval('res_partner_id_seq') AS id, g,
               g %% 3 = 0 AS is_company,
               CASE WHEN g %% 3 = 0 THEN 'Bench Company ' ELSE 'Bench Person ' END
                   || g AS name,
               %(now)s - random() * interval '48 months' AS created
          FROM generate_series(1, %(contacts)s) AS g) AS s
"""

# Customers drawn with a skew (random()^2): the first contacts have dozens of
# orders, the last ones about one, some none. States: 20 % draft, 15 % sent,
# 55 % confirmed, 10 % cancelled. Dates over the last 36 months.
ORDERS_SQL = """
INSERT INTO sale_order (
    name, partner_id, partner_invoice_id, partner_shipping_id, company_id,
    currency_id, currency_rate, pricelist_id, user_id, team_id, state,
    invoice_status, date_order, validity_date, amount_untaxed, amount_tax,
    amount_total, locked, require_signature, require_payment,
    prepayment_percent, create_uid, write_uid, create_date, write_date)
SELECT %(prefix)s || lpad(o.g::text, 7, '0'), c.id, c.id, c.id, %(company)s,
       %(currency)s, 1, NULL, %(user)s, %(team)s, o.state,
       CASE WHEN o.state = 'sale' THEN 'to invoice' ELSE 'no' END,
       o.date_order, (o.date_order + interval '30 days')::date,
       o.amount, round(o.amount * 0.2, 2), round(o.amount * 1.2, 2),
       false, true, false, 1.0, %(user)s, %(user)s,
       o.date_order - random() * interval '5 days', o.date_order
  FROM (SELECT g,
               1 + floor(power(random(), 2) * %(contacts)s)::int AS idx,
               CASE WHEN r < 0.20 THEN 'draft' WHEN r < 0.35 THEN 'sent'
                    WHEN r < 0.90 THEN 'sale' ELSE 'cancel' END AS state,
               %(now)s - random() * interval '36 months' AS date_order,
               round((50 + random() * 4950)::numeric, 2) AS amount
          FROM (SELECT g, random() AS r
                  FROM generate_series(1, %(orders)s) AS g) AS rs) AS o
  JOIN bench_contact c ON c.idx = o.idx
"""

# One line per order; 5 % of the confirmed orders sell the 12-month
# subscription product (the "Addict" stage needs an active subscription).
LINES_SQL = """
INSERT INTO sale_order_line (
    order_id, sequence, company_id, currency_id, order_partner_id, salesman_id,
    product_id, product_uom, state, name, product_uom_qty, price_unit,
    technical_price_unit, discount, price_subtotal, price_tax, price_total,
    price_reduce_taxexcl, price_reduce_taxinc, qty_delivered, qty_invoiced,
    qty_to_invoice, untaxed_amount_invoiced, untaxed_amount_to_invoice,
    customer_lead, invoice_status, qty_delivered_method, is_downpayment,
    is_expense, create_uid, write_uid, create_date, write_date)
SELECT so.id, 10, so.company_id, so.currency_id, so.partner_id, so.user_id,
       l.product_id, %(uom)s, so.state,
       CASE WHEN l.product_id = %(subscription)s THEN 'Bench subscription'
            ELSE 'Bench service' END,
       1, so.amount_untaxed, so.amount_untaxed, 0, so.amount_untaxed,
       so.amount_tax, so.amount_total, so.amount_untaxed, so.amount_total,
       0, 0, 0, 0, 0, 0, so.invoice_status, 'manual', false, false,
       so.create_uid, so.write_uid, so.create_date, so.write_date
  FROM sale_order so
 CROSS JOIN LATERAL (
       SELECT CASE WHEN so.state = 'sale' AND random() < 0.05
                   THEN %(subscription)s ELSE %(service)s END AS product_id
       ) AS l
 WHERE so.name LIKE %(like)s
"""


def generate(registry, contacts, orders):
    """Contacts, orders and order lines in a few set-based statements."""
    from odoo import SUPERUSER_ID, api, fields

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.ref("base.main_company")
        # Two products through the ORM (their many defaults), the rest in SQL.
        service, subscription = env["product.product"].create(
            [
                {"name": "Bench service", "type": "service", "list_price": 100},
                {
                    "name": "Bench subscription",
                    "type": "service",
                    "list_price": 500,
                    "subscription_months": 12,
                },
            ]
        )
        env.flush_all()
        params = {
            "now": fields.Datetime.now(),
            "contacts": contacts,
            "orders": orders,
            "uid": SUPERUSER_ID,
            "user": env.ref("base.user_admin").id,
            "company": company.id,
            "currency": company.currency_id.id,
            "team": env.ref("sales_team.team_sales_department").id,
            "service": service.id,
            "subscription": subscription.id,
            "uom": service.uom_id.id,
        }
        steps = [
            ("contacts", CONTACTS_SQL, dict(params, prefix=CODE_PREFIX)),
            (
                "contact index",
                "CREATE TEMP TABLE bench_contact AS "
                "SELECT row_number() OVER (ORDER BY id)::int AS idx, id "
                "FROM res_partner WHERE referral_code LIKE %(like)s; "
                "CREATE UNIQUE INDEX ON bench_contact (idx)",
                {"like": CODE_PREFIX + "%"},
            ),
            ("orders", ORDERS_SQL, dict(params, prefix=ORDER_PREFIX)),
            ("order lines", LINES_SQL, dict(params, like=ORDER_PREFIX + "%")),
            ("statistics", "ANALYZE res_partner, sale_order, sale_order_line", {}),
        ]
        for label, query, query_params in steps:
            started = time.perf_counter()
            cr.execute(query, query_params)
            rows = f"{cr.rowcount:,} rows, " if cr.rowcount > 0 else ""
            say(f"  {label}: {rows}{time.perf_counter() - started:.1f} s")
        cr.execute("DROP TABLE bench_contact")


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


def time_raw_aggregate(registry, runs=3):
    """Seconds of each run of one plain aggregate over all the orders."""
    times = []
    with registry.cursor() as cr:
        for _run in range(runs):
            started = time.perf_counter()
            cr.execute(RAW_AGGREGATE_SQL)
            groups = len(cr.fetchall())
            times.append(time.perf_counter() - started)
    return times, groups


class PhaseTimer:
    """Wall time and calls of some lifecycle engine methods, by wrapping them on
    the registry's class for the length of a pass (the addon is untouched).
    Nested calls count in each of their callers too."""

    def __init__(self, registry, names):
        self.model_class = registry["partner.lifecycle.engine"]
        self.names = names
        self.seconds = defaultdict(float)
        self.calls = defaultdict(int)
        self.sizes = defaultdict(int)

    def _wrap(self, name, method):
        @functools.wraps(method)
        def timed(*args, **kwargs):
            if name in PHASE_SIZES:
                self.sizes[name] += PHASE_SIZES[name](*args, **kwargs)
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started
                self.calls[name] += 1

        return timed

    def __enter__(self):
        self.saved = {name: vars(self.model_class).get(name) for name in self.names}
        for name in self.names:
            method = getattr(self.model_class, name)
            setattr(self.model_class, name, self._wrap(name, method))
        return self

    def __exit__(self, *exc_info):
        for name, own in self.saved.items():
            if own is None:
                delattr(self.model_class, name)  # back to the inherited method
            else:
                setattr(self.model_class, name, own)


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


def cron_loop(registry, batch_size):
    """Call the cron method until it returns 0, as ir.cron's runner does: a
    commit after each call, a new cursor every MAX_BATCH_PER_CRON_JOB calls.
    Return (seconds, calls, queries, per-call seconds, commit seconds)."""
    from odoo import SUPERUSER_ID, api

    from odoo.addons.base.models.ir_cron import MAX_BATCH_PER_CRON_JOB

    calls = queries = 0
    commit_seconds = 0.0
    per_call = []
    remaining = None
    started = time.perf_counter()
    while remaining != 0:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            for _call in range(MAX_BATCH_PER_CRON_JOB):
                call_started = time.perf_counter()
                before = cr.sql_log_count
                remaining = env["partner.lifecycle.engine"]._cron_recompute(
                    batch_size=batch_size
                )
                commit_started = time.perf_counter()
                cr.commit()  # pylint: disable=invalid-commit
                commit_seconds += time.perf_counter() - commit_started
                queries += cr.sql_log_count - before
                per_call.append(time.perf_counter() - call_started)
                calls += 1
                if not remaining:
                    break
    return time.perf_counter() - started, calls, queries, per_call, commit_seconds


def run_pass(registry, title, args):
    """One timed pass of the cron loop; print and return its figures."""
    before = figures(registry)
    profiler = cProfile.Profile() if args.profile else None
    with PhaseTimer(registry, PHASES) as phases:
        if profiler:
            profiler.enable()
        seconds, calls, queries, per_call, commit = cron_loop(registry, args.batch_size)
        if profiler:
            profiler.disable()
    after = figures(registry)
    processed = phases.sizes["_recompute"]
    written = phases.sizes["_write_stats"]
    moves = after["history"] - before["history"]
    messages = after["messages"] - before["messages"]
    say(
        "",
        f"{title}{' (under cProfile)' if profiler else ''}",
        f"  time                 {seconds:10.2f} s",
        f"  contacts             {processed:10,d}",
        f"  contacts/s           {processed / seconds:10,.0f}",
        f"  cron calls           {calls:10d}  (batch_size={args.batch_size}; "
        f"slowest {max(per_call):.2f} s, fastest {min(per_call):.2f} s)",
        f"  SQL queries          {queries:10,d}  ({queries / calls:.0f} per call)",
        f"  contacts written     {written:10,d}  (stage or aggregates changed)",
        f"  stage moves          {moves:10,d}  (history rows)",
        f"  chatter messages     {messages:10,d}",
        "  time by method (wall, nested calls counted in their callers too):",
    )
    for name in PHASES:
        if phases.calls[name]:
            say(
                f"    {name:36s} {phases.seconds[name]:8.2f} s "
                f"{phases.calls[name]:6d} calls"
            )
    outside = (
        seconds
        - phases.seconds["_recompute"]
        - phases.seconds["_lifecycle_candidate_ids"]
        - commit
    )
    say(
        f"    {'commit (flushes pending ORM writes)':36s} {commit:8.2f} s",
        f"    {'rest (cron params, search and count)':36s} {outside:8.2f} s",
    )
    if profiler:
        print_profile(profiler, args.profile_top)
    return {"seconds": seconds, "contacts": processed, "queries": queries}


def print_profile(profiler, top):
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        stats = pstats.Stats(profiler, stream=out)
        stats.sort_stats(sort).print_stats(top)
        lines = out.getvalue().splitlines()
        # From the column titles on: skip pstats's own header.
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        say(f"  cProfile, top {top} by {sort}:")
        say(*(f"    {line}" for line in lines[start:] if line.strip()))


def reset_cursor(registry, full=False):
    """Next cron call from the first contact (a finished pass already is);
    ``full``: forget the last run too, the next pass is a full one."""
    partner_module = importlib.import_module(
        f"odoo.addons.{ADDON}.models.partner_lifecycle_engine"
    )
    cron_module = importlib.import_module(
        f"odoo.addons.{ADDON}.models.partner_lifecycle_cron"
    )
    keys = [partner_module.LIFECYCLE_CRON_CURSOR]
    if full:
        keys.append(cron_module.LIFECYCLE_CRON_LAST_RUN)
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


def benchmark(ctx, args):
    install(ctx, args.db)
    registry = open_registry(ctx, args.db)
    say("", f"Generating {args.contacts:,} contacts and {args.orders:,} orders ...")
    started = time.perf_counter()
    generate(registry, args.contacts, args.orders)
    say(f"Generated in {time.perf_counter() - started:.1f} s.")
    counts = figures(registry)
    say(
        f"Database {args.db}: {counts['commercial']:,} commercial entities, "
        f"{counts['orders']:,} orders, {counts['lines']:,} order lines."
    )

    raw_times, groups = time_raw_aggregate(registry)
    raw = min(raw_times)
    say(
        "",
        "Raw SQL aggregate over the same orders (count, max date, sum by "
        "commercial entity):",
        f"  time                 {raw:10.3f} s  (best of {len(raw_times)}: "
        + ", ".join(f"{t:.3f}" for t in raw_times)
        + f"; {groups:,} groups)",
    )

    full = run_pass(
        registry, "Full recompute (cron loop, every contact gets a stage):", args
    )
    say("  stages after it:")
    for name, count in stage_distribution(registry):
        say(f"    {name:20s} {count:10,d}")

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

    def verdict(met):
        return "met" if met else "MISSED"

    summary = [
        "",
        "Summary",
        f"  full recompute       {full['seconds']:10.2f} s   "
        f"{full['contacts'] / full['seconds']:10,.0f} contacts/s   "
        f"{full['queries']:,} queries",
        f"  raw SQL aggregate    {raw:10.3f} s",
        f"  ratio full / raw     {full['seconds'] / raw:10.1f} x",
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


def run_main(benchmark, args, databases=None):
    """Run ``benchmark(ctx, args)`` with Odoo and PostgreSQL found as for
    ``make test``; ``databases`` (default: ``args.db``) are refused when in
    use, and dropped at the end unless ``args.keep``. Every benchmark of
    bench/ runs this way; returns the exit status."""
    databases = databases or [args.db]
    if not (ROOT / "__manifest__.py").is_file():
        say(f"{ROOT} holds no __manifest__.py: it is not an Odoo addon.")
        return 2
    odoo_run.CACHE.mkdir(exist_ok=True)
    signal.signal(signal.SIGTERM, odoo_run.on_sigterm)
    try:
        env, odoo_folder = odoo_run.odoo_environment()
        addons = odoo_run.addons_path(ADDON, odoo_folder)
        with odoo_run.Postgres() as pg:
            ctx = odoo_run.Context(env, addons, pg)
            for dbname in databases:
                refuse_if_in_use(pg, dbname)
            try:
                return benchmark(ctx, args)
            finally:
                for dbname in databases:
                    close_registry(dbname)
                    if args.keep:
                        say(f"Database {dbname} kept (--keep).")
                    else:
                        pg.drop_database(dbname)
                        say(f"Database {dbname} dropped.")
    except odoo_run.Abort as abort:
        sys.stderr.write(f"{abort}\n")
        return abort.status
    except KeyboardInterrupt:
        say("Interrupted.")
        return 130
    except odoo_run.Terminated:
        say("Terminated.")
        return 143


def main():
    return run_main(benchmark, parse_args())


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
