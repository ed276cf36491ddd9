# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""What the benchmarks of bench/ share: their command line and databases,
timers and query counts, the generated contacts and orders, and the figure
and target lines they print.

A benchmark runs as ``python3 bench/<name>.py [options]`` or through ``make
bench`` (all of them, ``BENCH_ARGS`` going to each); either way under
dev/odoo_run.py, which finds Odoo and PostgreSQL as for ``make test`` and
hands them over through the environment (``ODOO_RC``, ``PG*``). Odoo is then
loaded in the benchmark's own process: ``run()`` reads its configuration,
``install()`` creates a database with the addon (a separate ``python -m
odoo``, as ``make test`` installs it) and ``open_registry()`` opens it here.
"""

import argparse
import ast
import contextlib
import functools
import io
import os
import pstats
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADDON = "sale_referral_lifecycle"
# Odoo alone: the addon's dependencies, the baseline of the ratios.
ODOO_ALONE = ",".join(
    ast.literal_eval((ROOT / "__manifest__.py").read_text(encoding="utf-8"))["depends"]
)
ADMIN = 2  # base.user_admin: benchmarks that act as a user act as this one
# Generated referral codes: "B0" and 8 digits. The addon's codes never hold a
# "0", so these cannot collide with them.
CODE_PREFIX = "B0"
ORDER_PREFIX = "BENCH/"


def say(*lines):
    sys.stdout.write("".join(f"{line}\n" for line in lines))
    sys.stdout.flush()


def figure(label, text, width=20):
    """One line of figures under a title: ``  label      text``."""
    return f"  {label:<{width}} {text}"


def verdict(met):
    return "met" if met else "MISSED"


class Abort(Exception):
    """A reason to stop, explained by its message."""


class Terminated(BaseException):
    """SIGTERM: unwind, dropping the databases."""


def _on_sigterm(signum, frame):
    raise Terminated()


# Command line and databases --------------------------------------------------


def argument_parser(doc, db):
    """A parser with the options every benchmark has: --db and --keep."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n", 1)[0])
    parser.add_argument("--db", default=db, help="database (default: %(default)s)")
    parser.add_argument("--keep", action="store_true", help="keep the database(s)")
    return parser


def parse_args(parser):
    # make bench gives BENCH_ARGS to every benchmark: each ignores the others'.
    args, _others = parser.parse_known_args()
    return args


def run(benchmark, args, databases=None):
    """Run ``benchmark(args)`` with Odoo loaded in this process and return the
    exit status. Started directly, the script is run again through
    dev/odoo_run.py. ``databases`` (default: ``[args.db]``) are refused when
    another session uses them, and dropped at the end unless ``--keep``."""
    if not os.environ.get("BENCH_UNDER_RUNNER"):
        runner = str(ROOT / "dev" / "odoo_run.py")
        argv = [sys.executable, runner, "bench", sys.argv[0], "--", *sys.argv[1:]]
        os.execv(sys.executable, argv)
    databases = databases or [args.db]
    signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        import odoo

        # The configuration file is ODOO_RC, written by dev/odoo_run.py.
        odoo.tools.config.parse_config(
            ["--max-cron-threads=0", "--log-level=warn"], setup_logging=True
        )
        for dbname in databases:
            _refuse_if_in_use(dbname)
        try:
            return benchmark(args)
        finally:
            for dbname in databases:
                if args.keep:
                    close_registry(dbname)
                    say(f"Database {dbname} kept (--keep).")
                elif drop_database(dbname):
                    say(f"Database {dbname} dropped.")
    except Abort as abort:
        sys.stderr.write(f"{abort}\n")
        return 1
    except KeyboardInterrupt:
        say("Interrupted.")
        return 130
    except Terminated:
        say("Terminated.")
        return 143


def _refuse_if_in_use(dbname):
    """Stop before recreating a database another session uses (another
    benchmark running, or someone looking at a kept one)."""
    from odoo.sql_db import db_connect

    with contextlib.closing(db_connect("postgres").cursor()) as cr:
        cr.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [dbname])
        sessions = cr.fetchone()[0]
    if sessions:
        raise Abort(
            f"The database {dbname} is in use ({sessions} session(s): another "
            "benchmark?). Wait for it, or choose another name with --db NAME."
        )


def drop_database(dbname):
    """Drop ``dbname`` and its filestore if they exist (its registry closed)."""
    from odoo.service.db import exp_drop

    return exp_drop(dbname)


def close_registry(dbname):
    from odoo import sql_db
    from odoo.modules.registry import Registry

    Registry.delete(dbname)
    sql_db.close_db(dbname)


def create_database(dbname):
    """An empty database, as Odoo creates one (odoo/service/db.py,
    _create_empty_database), but where a missing pg_trgm (the embedded
    PostgreSQL has none) is a note here instead of an ERROR line in the log."""
    import psycopg2
    from psycopg2 import sql

    create = "CREATE DATABASE {} ENCODING 'unicode' LC_COLLATE 'C' TEMPLATE template0"
    for database, query in (
        ("postgres", sql.SQL(create).format(sql.Identifier(dbname))),
        (dbname, "CREATE EXTENSION IF NOT EXISTS pg_trgm"),
        (dbname, "GRANT CREATE ON SCHEMA PUBLIC TO PUBLIC"),
    ):
        conn = psycopg2.connect(dbname=database)  # the PG* variables
        conn.autocommit = True
        try:
            with conn.cursor() as cr:
                cr.execute(query)
        except psycopg2.Error as error:
            if database == "postgres":
                raise Abort(f"Could not create {dbname}: {error}") from error
            say(f"  note: {str(error).splitlines()[0]} (Odoo does without)")
        finally:
            conn.close()


def install(dbname, modules=ADDON):
    """Create ``dbname`` afresh with ``modules`` installed and no demo data."""
    drop_database(dbname)
    create_database(dbname)
    say(f"Installing {modules} without demo data in {dbname} ...")
    command = [sys.executable, "-m", "odoo", f"--database={dbname}"]
    command += [f"--init={modules}", "--without-demo=all", "--stop-after-init"]
    command += ["--no-http", "--max-cron-threads=0", "--log-level=warn"]
    with Stopwatch() as watch:
        # Not from the repository, whose folders would shadow modules.
        status = subprocess.run(command, cwd=ROOT / ".cache", check=False).returncode
    if status:
        raise Abort(f"Installing {modules} failed (status {status}).")
    say(f"Installed in {watch.seconds:.1f} s.")


def open_registry(dbname):
    from odoo.modules.registry import Registry

    return Registry(dbname)


def addon_attr(name):
    """A module-level name of the addon (a constant, a helper class), from
    whichever of its modules holds it: loaded with the registry."""
    prefix = f"odoo.addons.{ADDON}."
    for module_name, module in sorted(sys.modules.items()):
        if module_name.startswith(prefix) and hasattr(module, name):
            return getattr(module, name)
    raise LookupError(f"No module of {ADDON} defines {name}.")


# Timers ----------------------------------------------------------------------


class Stopwatch:
    """Wall time (``seconds``) and SQL queries of every cursor of this
    process (``queries``) of a ``with`` block."""

    def __enter__(self):
        from odoo import sql_db

        self.queries, self.started = sql_db.sql_counter, time.perf_counter()
        return self

    def __exit__(self, *exc_info):
        from odoo import sql_db

        self.seconds = time.perf_counter() - self.started
        self.queries = sql_db.sql_counter - self.queries


def timed(registry, call, uid=None, commit=True):
    """``call(env)`` in a transaction of its own (a fresh cursor: nothing
    cached), timed with its final flush, then committed (or rolled back).
    Return its Stopwatch, with what ``call`` returned as ``result``."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, uid or SUPERUSER_ID, {})
        with Stopwatch() as watch:
            watch.result = call(env)
            env.flush_all()
        if not commit:
            cr.rollback()
    return watch


def timed_runs(registry, call, runs=3):
    """``call(env)`` ``runs`` times, each in a fresh cursor and rolled back:
    their Stopwatches."""
    return [timed(registry, call, commit=False) for _run in range(runs)]


def cron_loop(registry, job):
    """Run ``job(env)`` as ir.cron runs a batched job, until it returns a
    false value (nothing left): a commit after each call, a fresh cursor
    every ``MAX_BATCH_PER_CRON_JOB`` calls. Return the loop's Stopwatch, with
    ``call_seconds`` (each call and its commit) and ``commit_seconds``."""
    from odoo import SUPERUSER_ID, api

    from odoo.addons.base.models.ir_cron import MAX_BATCH_PER_CRON_JOB

    remaining = True
    with Stopwatch() as loop:
        loop.call_seconds, loop.commit_seconds = [], 0.0
        while remaining:
            with registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                for _call in range(MAX_BATCH_PER_CRON_JOB):
                    started = time.perf_counter()
                    remaining = job(env)
                    committing = time.perf_counter()
                    cr.commit()  # pylint: disable=invalid-commit
                    loop.commit_seconds += time.perf_counter() - committing
                    loop.call_seconds.append(time.perf_counter() - started)
                    if not remaining:
                        break
    return loop


class MethodTimer:
    """Wall time, calls and sizes of methods of a model, wrapped on its
    registry class for the length of a ``with`` block (the addon's code is
    untouched); a nested call counts in its callers too.

    ``methods``: ``{name: size}``, ``size(args, result)`` giving what one call
    processed (or None); ``by``: ``{name: key(args)}`` to also time a method
    per key, in ``seconds_by[name, key]``."""

    def __init__(self, registry, model, methods, by=None):
        self.model_class = registry[model]
        self.methods = methods
        self.by = by or {}
        self.seconds = defaultdict(float)
        self.seconds_by = defaultdict(float)
        self.calls = defaultdict(int)
        self.sizes = defaultdict(int)

    def _wrap(self, name, method):
        size, key = self.methods[name], self.by.get(name)

        @functools.wraps(method)
        def timed_method(*args, **kwargs):
            started = time.perf_counter()
            try:
                result = method(*args, **kwargs)
            finally:
                seconds = time.perf_counter() - started
                self.seconds[name] += seconds
                self.calls[name] += 1
                if key:
                    self.seconds_by[name, key(args)] += seconds
            if size:
                self.sizes[name] += size(args, result)
            return result

        return timed_method

    def __enter__(self):
        self.saved = {name: vars(self.model_class).get(name) for name in self.methods}
        for name in self.methods:
            method = getattr(self.model_class, name)
            setattr(self.model_class, name, self._wrap(name, method))
        return self

    def __exit__(self, *exc_info):
        for name, own in self.saved.items():
            if own is None:
                delattr(self.model_class, name)  # back to the inherited method
            else:
                setattr(self.model_class, name, own)


def print_profile(profiler, top):
    """The ``top`` functions of a cProfile run, by own and cumulative time."""
    for sort in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats(sort).print_stats(top)
        lines = out.getvalue().splitlines()
        # From the column titles on: skip pstats's own header.
        start = next((i for i, line in enumerate(lines) if "ncalls" in line), 0)
        say(f"  cProfile, top {top} by {sort}:")
        say(*(f"    {line}" for line in lines[start:] if line.strip()))


# Generated data --------------------------------------------------------------


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


def execute_steps(cr, steps):
    """Run ``(label, query, params)`` steps, printing rows and seconds."""
    for label, query, params in steps:
        with Stopwatch() as watch:
            cr.execute(query, params)
        rows = f"{cr.rowcount:,} rows, " if cr.rowcount > 0 else ""
        say(f"  {label}: {rows}{watch.seconds:.1f} s")


def generate(registry, contacts, orders):
    """Contacts, orders (over 36 months, a few customers with many) and one
    line per order, in a few set-based statements."""
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
        execute_steps(
            cr,
            [
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
            ],
        )
        cr.execute("DROP TABLE bench_contact")
