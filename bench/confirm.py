#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the sales order confirmation, with and without the addon.

In one run: two fresh databases without demo data, one with Odoo alone (the
addon's dependencies: sale_management, account, portal, utm, resource), one
with the addon. In each, the same orders are confirmed one per transaction,
as a user confirming quotations one after the other (fresh environment,
warm registry), and timed with their SQL queries:

- a plain order: an existing customer's quotation of one service line;
- a referee's first order: a new customer's first quotation, with, in the
  addon's database, a sponsor's referral code typed on it (the referral is
  created, won and rewarded at confirmation).

It prints the median time and queries per confirmation and the ratios to
Odoo alone, against the targets (plain order: at most 1.25x and 4 more
queries; referee's first order: at most 3x and 30 more queries), then what
the lifecycle queue's job costs per order for the work that left the
confirmation (stages, follow-ups, the sponsor's reward). It asserts
nothing. The databases are dropped at the end unless ``--keep``. A quick
run: ``python3 bench/confirm.py --orders 20``.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lifecycle  # noqa: E402  (the sibling benchmark: install helpers)

odoo_run = lifecycle.odoo_run
say = odoo_run.say
ADDON = lifecycle.ADDON
ODOO_ALONE = "sale_management,account,portal,utm,resource,base_import"
TARGETS = {"plain": (1.25, 4), "referee": (3.0, 30)}
# Databases whose registry this process opened (the first parses the config).
OPENED = []


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument(
        "--orders",
        type=int,
        default=60,
        help="orders confirmed per case (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed first ones (%(default)s)"
    )
    parser.add_argument("--db", default="srl_confirm", help="default: %(default)s")
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    # make bench gives BENCH_ARGS to every benchmark: ignore the others'.
    args, _others = parser.parse_known_args()
    if args.orders < 1 or args.warmup < 0:
        parser.error("--orders must be positive, --warmup >= 0")
    return args


def prepare(registry, count, with_addon):
    """Quotations to confirm: ``{"plain": ids, "referee": ids}``."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        product = env["product.product"].create(
            {"name": "Bench service", "type": "service", "list_price": 100.0}
        )
        Partner = env["res.partner"]
        customer = Partner.create({"name": "Bench customer", "is_company": True})
        sponsor = Partner.create({"name": "Bench sponsor", "is_company": True})
        line = [(0, 0, {"product_id": product.id, "product_uom_qty": 1})]
        # The sponsor is a customer already (it may sponsor).
        env["sale.order"].create(
            {"partner_id": sponsor.id, "order_line": line}
        ).action_confirm()
        referees = Partner.create(
            [{"name": f"Bench referee {i}", "is_company": True} for i in range(count)]
        )
        code = {"referral_code": sponsor.referral_code} if with_addon else {}
        orders = {
            "plain": env["sale.order"].create(
                [{"partner_id": customer.id, "order_line": line}] * count
            ),
            "referee": env["sale.order"].create(
                [
                    dict({"partner_id": referee.id, "order_line": line}, **code)
                    for referee in referees
                ]
            ),
        }
        return {case: records.ids for case, records in orders.items()}


def confirm_each(registry, order_ids, warmup):
    """Confirm the orders one per transaction as the admin: ``(seconds,
    queries)`` of each after the warm-up ones."""
    from odoo import api

    admin = 2
    results = []
    for index, order_id in enumerate(order_ids):
        with registry.cursor() as cr:
            env = api.Environment(cr, admin, {})
            order = env["sale.order"].browse(order_id)
            before = cr.sql_log_count
            started = time.perf_counter()
            order.action_confirm()
            env.flush_all()
            seconds = time.perf_counter() - started
            queries = cr.sql_log_count - before
        if index >= warmup:
            results.append((seconds, queries))
    return results


def measure(ctx, dbname, modules, args, with_addon):
    lifecycle.install(ctx, dbname, modules)
    if OPENED:
        # Odoo's configuration is parsed once per process.
        from odoo.modules.registry import Registry

        registry = Registry(dbname)
    else:
        registry = lifecycle.open_registry(ctx, dbname)
    OPENED.append(dbname)
    ids = prepare(registry, args.orders + args.warmup, with_addon)
    figures = {}
    for case, order_ids in ids.items():
        results = confirm_each(registry, order_ids, args.warmup)
        figures[case] = (
            statistics.median(seconds for seconds, _queries in results),
            statistics.median(queries for _seconds, queries in results),
            min(seconds for seconds, _queries in results),
            max(seconds for seconds, _queries in results),
        )
        if with_addon:
            figures[f"{case} job"] = run_queue_job(registry, len(order_ids))
    return figures


def run_queue_job(registry, count):
    """What left the confirmation: the lifecycle queue's job run over the
    ``count`` orders just confirmed, as the cron does (a commit per call).
    ``(seconds per order, queries per order)``."""
    from odoo import SUPERUSER_ID, api

    seconds = queries = 0
    while True:
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            before = cr.sql_log_count
            started = time.perf_counter()
            remaining = env["partner.lifecycle.queue"]._cron_process()
            env.flush_all()
            cr.precommit.run()
            seconds += time.perf_counter() - started
            queries += cr.sql_log_count - before
        if not remaining:
            return seconds / count, queries / count


def report(alone, addon):
    lines = ["", "Confirmation of one order (median; min-max in brackets):"]
    for case, label in (("plain", "plain order"), ("referee", "referee's first")):
        base_s, base_q, base_min, base_max = alone[case]
        s, q, s_min, s_max = addon[case]
        ratio = s / base_s
        max_ratio, max_extra = TARGETS[case]
        verdict = "met" if ratio <= max_ratio and q - base_q <= max_extra else "MISSED"
        lines += [
            f"  {label:17s} Odoo alone {base_s * 1000:7.1f} ms "
            f"[{base_min * 1000:.1f}-{base_max * 1000:.1f}] {base_q:5.0f} queries",
            f"  {'':17s} with addon {s * 1000:7.1f} ms "
            f"[{s_min * 1000:.1f}-{s_max * 1000:.1f}] {q:5.0f} queries",
            f"  {'':17s} ratio {ratio:5.2f}x, {q - base_q:+.0f} queries "
            f"(target <= {max_ratio}x and +{max_extra}): {verdict}",
        ]
        if f"{case} job" in addon:
            job_s, job_q = addon[f"{case} job"]
            lines.append(
                f"  {'':17s} then the queue's job: {job_s * 1000:.1f} ms and "
                f"{job_q:.1f} queries per order (in batches, after the commit)"
            )
    say(*lines)


def databases(args):
    return [f"{args.db}_alone", f"{args.db}_addon"]


def benchmark(ctx, args):
    alone_db, addon_db = databases(args)
    alone = measure(ctx, alone_db, ODOO_ALONE, args, with_addon=False)
    addon = measure(ctx, addon_db, ADDON, args, with_addon=True)
    report(alone, addon)
    return 0


def main():
    args = parse_args()
    return lifecycle.run_main(benchmark, args, databases(args))


if __name__ == "__main__":
    sys.exit(main())
