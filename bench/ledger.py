#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the referral credit ledger (``make bench``).

Creates a fresh database (``srl_bench_ledger``) with the addon and no demo
data, then, in this process:

- gives customers wallets of 1, 1,000 and 10,000 posted credits (set-based
  SQL), and times a quotation with referral credit applied and confirmed
  (what the ledger adds: apply, tax split, fit, lock, spend) against the
  same quotation confirmed without credit (Odoo alone), and the invoice of
  that order posted (the spending moves from the order to its invoice);
- runs the property-based test of the ledger invariant with many more
  sequences than ``make test`` (``--examples``, random seeds), through
  ``dev/odoo_run.py test``.

It prints milliseconds, SQL queries and ratios; it asserts nothing about
times. The database is dropped at the end unless ``--keep``. A quick run:
``python3 bench/ledger.py --orders 3 --examples 0``.
"""

import contextlib
import os
import statistics
import subprocess
import sys

import benchlib
from benchlib import say

LEDGER_SIZES = (1, 1000, 10000)

CREDITS_SQL = """
INSERT INTO referral_wallet_transaction (
    name, transaction_type, direction, state, date, amount, signed_amount,
    remaining_amount, expiry_date, wallet_id, partner_id, company_id,
    create_uid, write_uid, create_date, write_date)
SELECT 'Bench credit ' || g, 'credit', 'in', 'posted', %(today)s, %(amount)s,
       %(amount)s, %(amount)s, %(today)s + (g %% 365 + 1), %(wallet)s,
       %(partner)s, %(company)s,
       1, 1, now(), now()
  FROM generate_series(1, %(size)s) AS g
"""


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_bench_ledger")
    parser.add_argument("--orders", type=int, default=20, help="per measure")
    parser.add_argument(
        "--examples",
        type=int,
        default=2000,
        help="sequences of the property test (default: %(default)s; 0: skip)",
    )
    return benchlib.parse_args(parser)


def prepare(registry):
    """A program spending credit on any order, a product without tax and one
    customer per ledger size; returns {size: partner id}, the product id."""
    from odoo import SUPERUSER_ID, Command, api, fields

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        env.ref("sale_referral_lifecycle.referral_program_default").write(
            {"redeem_scope": "any", "credit_tax_mode": "discount"}
        )
        tax = env["account.tax"].create(
            {"name": "Bench 20%", "amount": 20.0, "type_tax_use": "sale"}
        )
        product = env["product.product"].create(
            {
                "name": "Bench licence",
                "type": "service",
                "list_price": 100.0,
                "invoice_policy": "order",
                "taxes_id": [Command.set(tax.ids)],
            }
        )
        customers = {}
        for size in (0, *LEDGER_SIZES):
            partner = env["res.partner"].create(
                {"name": f"Ledger of {size}", "is_company": True}
            )
            customers[size] = partner.id
            if not size:
                continue
            wallet = env["referral.wallet"]._get_or_create(partner, env.company)
            env.flush_all()
            cr.execute(
                CREDITS_SQL,
                {
                    "today": fields.Date.today(),
                    "wallet": wallet.id,
                    "partner": partner.id,
                    "company": env.company.id,
                    "size": size,
                    # At least 500 of credit: every measured order spends 12.
                    "amount": max(1.0, 500.0 / size),
                },
            )
        cr.execute("ANALYZE referral_wallet_transaction")
        return customers, product.id


def measure(registry, partner_id, product_id, orders, with_credit):
    """Median milliseconds and queries per order: create a quotation, apply
    credit (or not), confirm it; then invoice it and post the invoice."""
    from odoo import SUPERUSER_ID, Command, api

    confirms, posts = [], []
    for _i in range(orders):
        with registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            with benchlib.Stopwatch() as confirm:
                order = env["sale.order"].create(
                    {
                        "partner_id": partner_id,
                        "order_line": [
                            Command.create({"product_id": product_id, "price_unit": 10})
                        ],
                    }
                )
                if with_credit:
                    order.action_apply_referral_credit()
                order.action_confirm()
                env.flush_all()
            with benchlib.Stopwatch() as post:
                order._create_invoices().action_post()
                env.flush_all()
        confirms.append(confirm)
        posts.append(post)
    return {
        "confirm_ms": 1000 * statistics.median(w.seconds for w in confirms),
        "confirm_queries": round(statistics.median(w.queries for w in confirms)),
        "post_ms": 1000 * statistics.median(w.seconds for w in posts),
        "post_queries": round(statistics.median(w.queries for w in posts)),
    }


def run_property_test(examples):
    """The ledger's property test with ``examples`` random sequences."""
    env = dict(
        os.environ,
        TEST_TAGS="/sale_referral_lifecycle:TestWalletLedgerProperty",
        REFERRAL_LEDGER_EXAMPLES=str(examples),
        REFERRAL_LEDGER_RANDOM="1",
    )
    runner = str(benchlib.ROOT / "dev" / "odoo_run.py")
    with benchlib.Stopwatch() as watch:
        result = subprocess.run(
            [sys.executable, runner, "test"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    last = (result.stdout.strip().splitlines() or ["?"])[-1]
    return watch.seconds, result.returncode, last


def benchmark(args):
    benchlib.install(args.db)
    registry = benchlib.open_registry(args.db)
    customers, product_id = prepare(registry)
    # Warm the caches (first order of the database).
    measure(registry, customers[0], product_id, 2, False)
    alone = measure(registry, customers[0], product_id, args.orders, False)
    say(
        "",
        f"Median of {args.orders} orders (one line, 20% tax), "
        "per order: create + confirm | invoice + post",
        f"  Odoo alone (no credit)         {alone['confirm_ms']:7.1f} ms "
        f"{alone['confirm_queries']:4d} q | {alone['post_ms']:7.1f} ms "
        f"{alone['post_queries']:4d} q",
    )
    for size in LEDGER_SIZES:
        figures = measure(registry, customers[size], product_id, args.orders, True)
        say(
            f"  with credit, ledger of {size:>6,}  {figures['confirm_ms']:7.1f} ms "
            f"{figures['confirm_queries']:4d} q | {figures['post_ms']:7.1f} ms "
            f"{figures['post_queries']:4d} q   ratio "
            f"{figures['confirm_ms'] / alone['confirm_ms']:.2f}x / "
            f"{figures['post_ms'] / alone['post_ms']:.2f}x, "
            f"+{figures['confirm_queries'] - alone['confirm_queries']} / "
            f"+{figures['post_queries'] - alone['post_queries']} queries"
        )
    if args.examples:
        say("", f"Property test of the ledger invariant, {args.examples} sequences:")
        seconds, status, last = run_property_test(args.examples)
        say(f"  {seconds:.0f} s, {'passed' if not status else 'FAILED'}: {last}")
        return status
    return 0


def main():
    return benchlib.run(benchmark, parse_args())


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        raise SystemExit(main())
