#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the sales order confirmation, with and without the addon.

In one run: two fresh databases without demo data, one with Odoo alone (the
addon's dependencies, as its manifest lists them), one with the addon. In
each, the same orders are confirmed one per transaction, as a user
confirming quotations one after the other (fresh environment, warm
registry), and timed with their SQL queries:

- a plain order: an existing customer's quotation of one service line;
- a referee's first order: a new customer's first quotation, with, in the
  addon's database, a sponsor's referral code typed on it (the referral is
  created, won and rewarded at confirmation).

It prints the median time and queries per confirmation and the ratios to
Odoo alone, against the targets (plain order: at most 1.25x and 2 more
queries; referee's first order: at most 3x and 15 more queries), then what
the lifecycle queue's job costs per order for the work that left the
confirmation (stages, follow-ups, the sponsor's reward). It asserts
nothing. The databases are dropped at the end unless ``--keep``. A quick
run: ``python3 bench/confirm.py --orders 20``.
"""

import statistics

import benchlib
from benchlib import ADDON, ADMIN, ODOO_ALONE, say

TARGETS = {"plain": (1.25, 2), "referee": (3.0, 15)}


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_confirm")
    parser.add_argument(
        "--orders",
        type=int,
        default=60,
        help="orders confirmed per case (default: %(default)s)",
    )
    parser.add_argument(
        "--warmup", type=int, default=5, help="untimed first ones (%(default)s)"
    )
    args = benchlib.parse_args(parser)
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
    """Confirm the orders one per transaction as the admin: the Stopwatches
    of those after the warm-up ones."""

    def confirm(order_id):
        return benchlib.timed(
            registry,
            lambda env: env["sale.order"].browse(order_id).action_confirm(),
            uid=ADMIN,
        )

    return [confirm(order_id) for order_id in order_ids][warmup:]


def measure(dbname, modules, args, with_addon):
    benchlib.install(dbname, modules)
    registry = benchlib.open_registry(dbname)
    ids = prepare(registry, args.orders + args.warmup, with_addon)
    figures = {}
    for case, order_ids in ids.items():
        watches = confirm_each(registry, order_ids, args.warmup)
        seconds = [watch.seconds for watch in watches]
        figures[case] = (
            statistics.median(seconds),
            statistics.median(watch.queries for watch in watches),
            min(seconds),
            max(seconds),
        )
        if with_addon:
            figures[f"{case} job"] = run_queue_job(registry, len(order_ids))
    return figures


def run_queue_job(registry, count):
    """What left the confirmation: the lifecycle queue's job run over the
    ``count`` orders just confirmed, as the cron does (a commit per call).
    ``(seconds per order, queries per order)``."""
    loop = benchlib.cron_loop(
        registry, lambda env: env["partner.lifecycle.queue"]._cron_process()
    )
    return loop.seconds / count, loop.queries / count


def report(alone, addon):
    lines = ["", "Confirmation of one order (median; min-max in brackets):"]
    for case, label in (("plain", "plain order"), ("referee", "referee's first")):
        base_s, base_q, base_min, base_max = alone[case]
        s, q, s_min, s_max = addon[case]
        ratio = s / base_s
        max_ratio, max_extra = TARGETS[case]
        met = ratio <= max_ratio and q - base_q <= max_extra
        lines += [
            f"  {label:17s} Odoo alone {base_s * 1000:7.1f} ms "
            f"[{base_min * 1000:.1f}-{base_max * 1000:.1f}] {base_q:5.0f} queries",
            f"  {'':17s} with addon {s * 1000:7.1f} ms "
            f"[{s_min * 1000:.1f}-{s_max * 1000:.1f}] {q:5.0f} queries",
            f"  {'':17s} ratio {ratio:5.2f}x, {q - base_q:+.0f} queries "
            f"(target <= {max_ratio}x and +{max_extra}): {benchlib.verdict(met)}",
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


def benchmark(args):
    alone_db, addon_db = databases(args)
    alone = measure(alone_db, ODOO_ALONE, args, with_addon=False)
    addon = measure(addon_db, ADDON, args, with_addon=True)
    report(alone, addon)
    return 0


def main():
    args = parse_args()
    return benchlib.run(benchmark, args, databases(args))


if __name__ == "__main__":
    raise SystemExit(main())
