#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Benchmark of the import of referrals through Odoo's import (base_import).

In one run: two fresh databases without demo data, one with Odoo alone (the
addon's dependencies), one with the addon. A CSV file is imported with the
import dialog's calls (``base_import.import``: create, parse_preview,
execute_import), in one transaction, as the admin:

Each import is run three times, rolled back, and the best is kept (one
run varies by half from the next):

- Odoo alone: N contacts (name, email, phone), the floor: what base_import
  costs per row when the row is one plain record;
- with the addon: the same N contacts (the addon's first contact and stage
  on each), then N referrals with the columns of data/samples/referrals.csv:
  the sponsor named by its referral code, its email or its name in turn,
  each referee a new company with a contact person (two contacts, a
  referral, its routing, the program's two activities per row).

The sponsors are customers created beforehand, one per five rows; the
program's burst check (more than five referrals of one sponsor in an hour
wait for a review) is left as installed. It prints seconds, rows per second
and SQL queries per row, and the ratios to the contact import of Odoo alone.
It asserts nothing. The databases are dropped at the end unless ``--keep``.
A quick run: ``python3 bench/referral_import.py --rows 50``.
"""

import contextlib
import cProfile
import csv
import io

import benchlib
from benchlib import ADDON, ADMIN, ODOO_ALONE, say

ROWS_PER_SPONSOR = 5
# Each file imported this many times, rolled back, the best kept: a single
# import of a few hundred rows varies by half from one run to the next.
RUNS = 3
# The target: a referral row within 5x of a contact row of Odoo alone.
TARGET_RATIO = 5
REFERRAL_HEADERS = [
    "Sponsor Reference",
    "Referred Company",
    "Contact Name",
    "Email",
    "Phone",
    "Tax ID",
    "Referred On",
]


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_import")
    parser.add_argument(
        "--rows", type=int, default=300, help="rows per file (default: %(default)s)"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="print the N costliest functions of the referral import (cProfile)",
    )
    args = benchlib.parse_args(parser)
    if args.rows < 1:
        parser.error("--rows must be positive")
    return args


def to_csv(headers, rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(headers)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def contacts_file(rows, prefix):
    return to_csv(
        ["Name", "Email", "Phone"],
        [
            [
                f"{prefix} contact {i}",
                f"contact{i}@{prefix.lower()}.example.com",
                f"+32 2 555 {i:05d}",
            ]
            for i in range(rows)
        ],
    )


def prepare_sponsors(registry, rows):
    """Customers able to sponsor: ``[(code, email, name)]``, one per
    ``ROWS_PER_SPONSOR`` rows."""
    from odoo import SUPERUSER_ID, api

    count = -(-rows // ROWS_PER_SPONSOR)
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        product = env["product.product"].create(
            {"name": "Bench service", "type": "service", "list_price": 100.0}
        )
        sponsors = env["res.partner"].create(
            [
                {
                    "name": f"Bench sponsor {i}",
                    "is_company": True,
                    "email": f"owner@sponsor{i}.example.com",
                }
                for i in range(count)
            ]
        )
        line = [(0, 0, {"product_id": product.id, "product_uom_qty": 1})]
        env["sale.order"].create(
            [{"partner_id": sponsor.id, "order_line": line} for sponsor in sponsors]
        ).action_confirm()
        return [(s.referral_code, s.email, s.name) for s in sponsors]


def referrals_file(sponsors, rows, prefix):
    lines = []
    for i in range(rows):
        code, email, name = sponsors[i // ROWS_PER_SPONSOR]
        lines.append(
            [
                (code, email, name)[i % 3],
                f"{prefix} referee {i}",
                f"Person {i}",
                f"person{i}@{prefix.lower()}-referee{i}.example.com",
                "",
                "",
                "2026-03-02",
            ]
        )
    return to_csv(REFERRAL_HEADERS, lines)


def import_file(registry, model, content, profile=0, commit=True):
    """Import ``content`` into ``model`` as the dialog does, in one
    transaction (committed, or rolled back): ``(seconds, queries, rows
    imported, messages)``; with ``profile``, print its costliest
    functions."""
    from odoo import api

    with registry.cursor() as cr:
        env = api.Environment(cr, ADMIN, {})
        wizard = env["base_import.import"].create(
            {
                "res_model": model,
                "file": content,
                "file_name": "bench.csv",
                "file_type": "text/csv",
            }
        )
        preview = wizard.parse_preview(
            {
                "has_headers": True,
                "quoting": '"',
                "separator": ",",
                "date_format": "%Y-%m-%d",
                "datetime_format": "",
            }
        )
        matches = preview["matches"]
        fields = [
            "/".join(matches[index]) if index in matches else False
            for index in range(len(preview["headers"]))
        ]
        profiler = cProfile.Profile() if profile else contextlib.nullcontext()
        with benchlib.Stopwatch() as watch, profiler:
            result = wizard.execute_import(
                fields, preview["headers"], preview["options"]
            )
            env.flush_all()
        if not commit:
            cr.rollback()
    if profile:
        benchlib.print_profile(profiler, profile)
    return watch.seconds, watch.queries, len(result["ids"] or []), result["messages"]


def measure(registry, label, model, content, rows, profile=0):
    """The best of ``RUNS`` imports of ``content``, each rolled back (the
    profiled one is the last): ``(label, seconds, queries, every run's
    seconds)``."""
    runs = []
    for run in range(RUNS):
        seconds, queries, imported, messages = import_file(
            registry, model, content, profile if run == RUNS - 1 else 0, commit=False
        )
        if imported != rows:
            raise benchlib.Abort(
                f"{label}: {imported} of {rows} rows imported: {messages}"
            )
        runs.append(seconds)
    return label, min(runs), queries, runs


def report(rows, results):
    base_seconds, base_queries = results[0][1], results[0][2]
    lines = [
        "",
        f"Import of {rows} rows through base_import (one transaction, best of "
        f"{RUNS}, rolled back):",
    ]
    for label, seconds, queries, runs in results:
        lines.append(
            f"  {label:34s} {seconds:7.2f} s  {rows / seconds:7.0f} rows/s  "
            f"{queries / rows:6.1f} queries/row  "
            f"{seconds / base_seconds:5.1f}x  {queries / base_queries:5.1f}x queries"
            f"  (runs: {', '.join(f'{run:.2f}' for run in runs)})"
        )
    lines.append("  (ratios to the contact import of Odoo alone)")
    referral_seconds = results[-1][1]
    lines.append(
        f"  target               referrals within {TARGET_RATIO}x of the contact "
        f"import: {benchlib.verdict(referral_seconds / base_seconds <= TARGET_RATIO)}"
    )
    say(*lines)


def databases(args):
    return [f"{args.db}_alone", f"{args.db}_addon"]


def benchmark(args):
    alone_db, addon_db = databases(args)
    warmup = 5
    benchlib.install(alone_db, ODOO_ALONE)
    registry = benchlib.open_registry(alone_db)
    import_file(registry, "res.partner", contacts_file(warmup, "Warm"))
    results = [
        measure(
            registry,
            "contacts, Odoo alone",
            "res.partner",
            contacts_file(args.rows, "Bench"),
            args.rows,
        )
    ]
    benchlib.install(addon_db, ADDON)
    registry = benchlib.open_registry(addon_db)
    sponsors = prepare_sponsors(registry, args.rows + warmup)
    import_file(registry, "res.partner", contacts_file(warmup, "Warm"))
    import_file(registry, "referral.referral", referrals_file(sponsors, warmup, "Warm"))
    # The warm-up's sponsors sent their rows already: use the others.
    sponsors = sponsors[-(-warmup // ROWS_PER_SPONSOR) :]
    results += [
        measure(
            registry,
            "contacts, with the addon",
            "res.partner",
            contacts_file(args.rows, "Bench"),
            args.rows,
        ),
        measure(
            registry,
            "referrals (2 contacts each), addon",
            "referral.referral",
            referrals_file(sponsors, args.rows, "Bench"),
            args.rows,
            args.profile,
        ),
    ]
    report(args.rows, results)
    return 0


def main():
    args = parse_args()
    return benchlib.run(benchmark, args, databases(args))


if __name__ == "__main__":
    raise SystemExit(main())
