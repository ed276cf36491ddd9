#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the referral program KPI reports (``make bench``).

Creates a fresh database (``srl_bench_kpi``) with the addon and no demo
data, fills it in set-based SQL with contacts and orders (the data of
bench/lifecycle.py) and accepted referrals for a fifth of the
customers, then times, in this process, what a manager's screens ask:

- the pivot of ``referral.program.kpi`` (new customers and referral share
  per month and salesperson), against Odoo's own ``sale.report`` grouped by
  month on the same orders (Odoo alone) and against the raw SQL aggregate
  of first orders per customer and month;
- the conversion of referred prospects against the others
  (``referral.prospect.kpi`` grouped by "Referred");
- the dashboard card of the program (its three grouped reads).

It prints milliseconds, SQL queries and ratios; it asserts nothing about
times. The database is dropped at the end unless ``--keep``. A quick run:
``python3 bench/kpi.py --contacts 2000 --orders 6000 --runs 2``.
"""

import contextlib
import statistics

import benchlib
from benchlib import say

# A fifth of the customers came through an accepted referral, made 1 to 30
# days before their first order, from another customer.
REFERRALS_SQL = """
INSERT INTO referral_referral (
    name, source, state, date_referral, sponsor_id, referee_id, company_id,
    program_id, user_id, create_uid, write_uid, create_date, write_date)
SELECT 'BENCH-REF-' || f.partner_id, 'backend', 'won',
       f.first_order - (1 + floor(random() * 30)) * interval '1 day',
       %(sponsor)s, f.partner_id, %(company)s, %(program)s, %(user)s,
       1, 1, now(), now()
  FROM (SELECT p.commercial_partner_id AS partner_id,
               min(so.date_order) AS first_order
          FROM sale_order so
          JOIN res_partner p ON p.id = so.partner_id
         WHERE so.state = 'sale'
      GROUP BY p.commercial_partner_id) AS f
 WHERE random() < 0.2 AND f.partner_id != %(sponsor)s
"""

# What the report adds to: first confirmed order per customer and company,
# counted per month, in plain SQL.
RAW_SQL = """
SELECT date_trunc('month', first_order), count(*)
  FROM (SELECT DISTINCT ON (p.commercial_partner_id, so.company_id)
               so.date_order AS first_order
          FROM sale_order so
          JOIN res_partner p ON p.id = so.partner_id
         WHERE so.state = 'sale'
      ORDER BY p.commercial_partner_id, so.company_id, so.date_order, so.id) f
GROUP BY 1
"""


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_bench_kpi")
    parser.add_argument("--contacts", type=int, default=30_000, help="%(default)s")
    parser.add_argument("--orders", type=int, default=90_000, help="%(default)s")
    parser.add_argument("--runs", type=int, default=5, help="per measure")
    return benchlib.parse_args(parser)


def add_referrals(registry):
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.ref("base.main_company")
        sponsor = env["res.partner"].create({"name": "Bench Sponsor"})
        env.flush_all()
        cr.execute(
            REFERRALS_SQL,
            {
                "sponsor": sponsor.id,
                "company": company.id,
                "program": env.ref(
                    "sale_referral_lifecycle.referral_program_default"
                ).id,
                "user": env.ref("base.user_admin").id,
            },
        )
        say(f"  referrals: {cr.rowcount:,} rows")
        cr.execute("ANALYZE referral_referral")


def measure(registry, runs, label, call):
    """Median milliseconds and most queries of ``call(env)`` over ``runs``
    runs, each in a fresh cursor (nothing cached between runs)."""
    watches = benchlib.timed_runs(registry, call, runs)
    result = {
        "ms": statistics.median(watch.seconds for watch in watches) * 1000,
        "queries": max(watch.queries for watch in watches),
    }
    say(f"  {label:<44} {result['ms']:9.1f} ms {result['queries']:4d} queries")
    return result


def kpi_pivot(env):
    env["referral.program.kpi"].read_group(
        [],
        ["customer_count:sum", "referred_count:sum", "referral_share:avg"],
        ["date:month", "user_id"],
        lazy=False,
    )


def sale_report_pivot(env):
    env["sale.report"].read_group(
        [("state", "=", "sale")],
        ["nbr:sum", "price_subtotal:sum"],
        ["date:month", "user_id"],
        lazy=False,
    )


def raw_aggregate(env):
    env.cr.execute(RAW_SQL)
    env.cr.fetchall()


def conversion(env):
    env["referral.prospect.kpi"].read_group(
        [], ["prospect_count:sum", "conversion_rate:avg"], ["is_referred"], lazy=False
    )


def dashboard(env):
    program = env.ref("sale_referral_lifecycle.referral_program_default")
    program.invalidate_recordset()
    program.mapped("kpi_referral_share")


def benchmark(args):
    benchlib.install(args.db)
    registry = benchlib.open_registry(args.db)
    say(f"Data: {args.contacts:,} contacts, {args.orders:,} orders ...")
    benchlib.generate(registry, args.contacts, args.orders)
    add_referrals(registry)
    with registry.cursor() as cr:
        cr.execute(
            "SELECT count(*), count(*) FILTER (WHERE is_referred) "
            "FROM referral_program_kpi"
        )
        customers, referred = cr.fetchone()
    say(
        f"New customers: {customers:,}, referred: {referred:,} "
        f"({100.0 * referred / max(customers, 1):.1f} %)",
        f"Median of {args.runs} runs (fresh cursor each):",
    )
    raw = measure(registry, args.runs, "raw SQL: first orders per month", raw_aggregate)
    odoo = measure(
        registry,
        args.runs,
        "Odoo alone: sale.report month x salesperson",
        sale_report_pivot,
    )
    kpi = measure(
        registry, args.runs, "referral.program.kpi month x salesperson", kpi_pivot
    )
    conv = measure(registry, args.runs, "referral.prospect.kpi by referred", conversion)
    card = measure(registry, args.runs, "dashboard card (referral.program)", dashboard)
    say(
        "Summary:",
        f"  KPI pivot / raw SQL          {kpi['ms'] / raw['ms']:6.2f} x",
        f"  KPI pivot / sale.report      {kpi['ms'] / odoo['ms']:6.2f} x",
        f"  conversion / raw SQL         {conv['ms'] / raw['ms']:6.2f} x",
        f"  dashboard card               {card['ms']:6.1f} ms, "
        f"{card['queries']} queries",
    )
    return 0


def main():
    return benchlib.run(benchmark, parse_args())


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
