#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Load benchmark: the addon under Odoo's multi-process server (``make bench``).

Creates a fresh database (``srl_load``) with the addon and no demo data,
starts Odoo on it as a deployment runs it (``--workers=2
--max-cron-threads=1``, a free loopback port, its log in a file), then, over
XML-RPC and at the same time:

- ``--clients`` clients confirm ``--referees`` referees' first orders, each
  typed with a sponsor's referral code (the referral is won at once, the
  sponsor's reward posted by the lifecycle queue's job a moment later);
- a client spends the sponsors' credit on renewal quotations as it arrives
  (credit applied, order confirmed), round after round;
- two clients confirm, at the same instant, two quotations spending the
  whole credit of one wallet: one goes through, the other is refused.

Before the clock starts, one referee's order (of a sponsor apart) is
confirmed and its reward posted: the server is warm, as one in service.

It waits for the queue to drain, then checks: one reward per referral,
every wallet's balance exactly its initial credit plus its rewards less what
its confirmed orders spent, no negative balance, one wallet per customer and
company, no ERROR line and no failed job in the server's log. It prints the
confirmations' throughput and latency (p50, p95), and the delay from a
confirmation to its sponsor's reward (seen by polling the database), stops
the server and drops the database (unless ``--keep``). Exit status 1 when a
check fails. A quick run: ``python3 bench/load.py --referees 40``.
"""

import contextlib
import os
import queue
import shutil
import statistics
import subprocess
import sys
import threading
import time
import xmlrpc.client

import benchlib
from benchlib import ROOT, say

REWARD = 20.0
INITIAL_CREDIT = 50.0
RENEWAL_PRICE = 30.0
RACE_CREDIT = 100.0
RACE_PRICE = 80.0
# A delay from confirmation to reward over this misses the target.
TARGET_DELAY_P95 = 10.0
LOGIN = PASSWORD = "admin"
# The jobs the load wakes: the lifecycle queue's (rewards) and the emails'.
LOAD_CRONS = (
    "sale_referral_lifecycle.ir_cron_process_lifecycle_queue",
    "sale_referral_lifecycle.ir_cron_send_referral_notifications",
)


def parse_args():
    parser = benchlib.argument_parser(__doc__, db="srl_load")
    parser.add_argument(
        "--referees",
        type=int,
        default=120,
        help="referees' first orders confirmed (default: %(default)s)",
    )
    parser.add_argument(
        "--sponsors", type=int, default=12, help="sponsors (default: %(default)s)"
    )
    parser.add_argument(
        "--clients",
        type=int,
        default=4,
        help="clients confirming the referees' orders (default: %(default)s)",
    )
    parser.add_argument(
        "--template",
        help="copy this database (made by a first run with the option: the "
        "addon installed) instead of installing afresh: quicker repeated runs",
    )
    parser.add_argument(
        "--queue-timeout",
        type=float,
        default=120,
        help="seconds to wait for the queue after the last order (%(default)s)",
    )
    args = benchlib.parse_args(parser)
    if min(args.referees, args.sponsors, args.clients) < 1:
        parser.error("--referees, --sponsors and --clients must be positive")
    return args


def percentile(values, fraction):
    """The value under which ``fraction`` of ``values`` fall (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(0, min(len(ordered) - 1, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[rank]


# Data ------------------------------------------------------------------------


def prepare(registry, args):
    """The program (a fixed reward at confirmation, no approval, no cap),
    sponsors with their initial credit, the referees' quotations with their
    sponsors' codes, the race's wallet and two quotations spending it."""
    from odoo import SUPERUSER_ID, api

    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        company = env.company
        env["referral.program"]._get_company_program(company).write(
            {
                "sponsor_policy": "any",
                "reward_type": "fixed",
                "reward_fixed_amount": REWARD,
                "reward_max_amount": 0.0,
                "yearly_cap_amount": 0.0,
                "reward_trigger": "order_confirmed",
                "approval_required": False,
            }
        )
        product = env["product.product"].create(
            {
                "name": "Load service",
                "type": "service",
                "list_price": RENEWAL_PRICE,
                "taxes_id": [(5, 0, 0)],
            }
        )
        Partner = env["res.partner"]
        sponsors = Partner.create(
            [
                {"name": f"Load sponsor {i}", "is_company": True}
                for i in range(args.sponsors)
            ]
        )
        race = Partner.create({"name": "Load race sponsor", "is_company": True})
        Wallet = env["referral.wallet"]
        initial = {}
        for sponsor in sponsors:
            wallet = Wallet._get_or_create(sponsor, company)
            wallet._credit(INITIAL_CREDIT, name="Load initial credit")
            initial[sponsor.id] = INITIAL_CREDIT
        Wallet._get_or_create(race, company)._credit(RACE_CREDIT, name="Load race")
        initial[race.id] = RACE_CREDIT
        referees = Partner.create(
            [
                {"name": f"Load referee {i}", "is_company": True}
                for i in range(args.referees)
            ]
        )
        line = [(0, 0, {"product_id": product.id, "product_uom_qty": 1})]
        orders = env["sale.order"].create(
            [
                {
                    "partner_id": referee.id,
                    "order_line": line,
                    "referral_code": sponsors[i % len(sponsors)].referral_code,
                }
                for i, referee in enumerate(referees)
            ]
        )
        # The warm-up's referee and sponsor, apart from the load's.
        warm_sponsor, warm_referee = Partner.create(
            [
                {"name": f"Load warm-up {role}", "is_company": True}
                for role in ("sponsor", "referee")
            ]
        )
        warm_up_order = env["sale.order"].create(
            {
                "partner_id": warm_referee.id,
                "order_line": line,
                "referral_code": warm_sponsor.referral_code,
            }
        )
        race_line = [(0, 0, {"product_id": product.id, "price_unit": RACE_PRICE})]
        race_orders = env["sale.order"].create(
            [{"partner_id": race.id, "order_line": race_line, "is_renewal": True}] * 2
        )
        race_orders.action_apply_referral_credit()
        # A server running for a while: the jobs of a fresh database (all due
        # at its installation) are not all due in the load's minute; the
        # addon's jobs woken by the load stay as they are.
        cr.execute(
            """UPDATE ir_cron SET nextcall = (now() at time zone 'UTC')
                                             + interval '1 day'
                WHERE id NOT IN %s""",
            [tuple(env.ref(xmlid).id for xmlid in LOAD_CRONS)],
        )
        cr.execute(
            "DELETE FROM ir_cron_trigger WHERE cron_id NOT IN %s",
            [tuple(env.ref(xmlid).id for xmlid in LOAD_CRONS)],
        )
        return {
            "product": product.id,
            "sponsors": sponsors.ids,
            "race": race.id,
            "initial": initial,
            "orders": orders.ids,
            "race_orders": race_orders.ids,
            "warm_up_order": warm_up_order.id,
        }


# Server ----------------------------------------------------------------------


class Server:
    """Odoo serving ``dbname`` with 2 HTTP workers and 1 cron thread."""

    def __init__(self, dbname):
        self.dbname = dbname
        self.port = free_port()
        self.log_path = ROOT / ".cache" / f"load-{dbname}.log"

    def __enter__(self):
        # A script, not ``-m odoo``: the server starts its websocket process
        # by running its own script again.
        launcher = ROOT / ".cache" / "odoo-server.py"
        launcher.write_text(
            'import os\n\nos.environ["TZ"] = "UTC"\nimport odoo\n\nodoo.cli.main()\n',
            encoding="utf-8",
        )
        command = [sys.executable, str(launcher), f"--database={self.dbname}"]
        command += [f"--db-filter=^{self.dbname}$", "--http-interface=127.0.0.1"]
        command += [f"--http-port={self.port}", f"--gevent-port={free_port()}"]
        command += ["--workers=2", "--max-cron-threads=1", "--log-level=info"]
        command += [f"--logfile={self.log_path}", "--limit-time-real=600"]
        self.log_path.unlink(missing_ok=True)
        # What the server prints outside its log (its websocket process,
        # which needs gevent, may fail to start: XML-RPC does without).
        self.output = open(self.log_path.with_suffix(".out"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(  # noqa: S603
            command,
            cwd=ROOT / ".cache",
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common").version()
                break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise benchlib.Abort(
                        f"Odoo did not start; see {self.log_path}"
                    ) from None
                time.sleep(0.5)
        common = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/common")
        self.uid = common.authenticate(self.dbname, LOGIN, PASSWORD, {})
        if not self.uid:
            raise benchlib.Abort("Could not log in as admin.")
        say(f"Odoo serving {self.dbname} on {self.url} (log: {self.log_path})")
        return self

    def client(self):
        """A new XML-RPC connection: ``call(model, method, *args, **kw)``."""
        proxy = xmlrpc.client.ServerProxy(f"{self.url}/xmlrpc/2/object")

        def call(model, method, *args, **kwargs):
            return proxy.execute_kw(
                self.dbname, self.uid, PASSWORD, model, method, list(args), kwargs
            )

        return call

    def __exit__(self, *exc_info):
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.output.close()

    def log_problems(self):
        """The lines of the log that tell an error or a failed job."""
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        return [
            line
            for line in text.splitlines()
            if " ERROR " in line
            or " CRITICAL " in line
            or ("odoo.addons.base.models.ir_cron" in line and "failed" in line)
        ]


def free_port():
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Load ------------------------------------------------------------------------


class Load:
    """The clients, run at once; what they saw."""

    def __init__(self, server, registry, data, args):
        self.server, self.registry, self.data, self.args = server, registry, data, args
        self.confirmed_at = {}  # order id -> time its confirmation returned
        self.latencies = []
        self.rewarded_at = {}  # order id -> time its reward was first seen
        self.spent = []  # (partner id, amount) of the spending orders confirmed
        self.refused = []  # spending confirmations refused (credit gone)
        self.errors = []
        self.lock = threading.Lock()
        self.confirming = threading.Event()

    def warm_up(self):
        """A server in service has already served requests and run its
        jobs: one referee's order (of a sponsor apart) is confirmed and its
        reward posted before the clock starts. The first call of a freshly
        started cron worker that posts a reward loads the code and caches
        of the booking (6-12 s on this machine): not the load's delay."""
        from odoo import sql_db

        order_id = self.data["warm_up_order"]
        self.server.client()("sale.order", "action_confirm", [order_id])
        db = sql_db.db_connect(self.server.dbname)
        deadline = time.monotonic() + self.args.queue_timeout
        while time.monotonic() < deadline:
            with db.cursor() as cr:
                cr.execute(
                    """SELECT count(*) FROM referral_wallet_transaction t
                         JOIN referral_referral r ON r.id = t.referral_id
                        WHERE r.first_order_id = %s
                          AND t.transaction_type = 'credit'""",
                    [order_id],
                )
                if cr.fetchone()[0]:
                    return
            time.sleep(0.2)
        raise RuntimeError("the warm-up order's reward did not arrive in time")

    def run(self):
        todo = queue.Queue()
        for order_id in self.data["orders"]:
            todo.put(order_id)
        self.confirming.set()
        threads = [
            threading.Thread(target=self._guard, args=(self._confirm_referees, todo))
            for _client in range(self.args.clients)
        ]
        threads.append(threading.Thread(target=self._guard, args=(self._spend,)))
        barrier = threading.Barrier(2)
        threads += [
            threading.Thread(target=self._guard, args=(self._race, order_id, barrier))
            for order_id in self.data["race_orders"]
        ]
        watcher = threading.Thread(target=self._guard, args=(self._watch_rewards,))
        watcher.start()
        started = time.monotonic()
        self.started = time.time()
        for thread in threads[: self.args.clients]:
            thread.start()
        # The spenders start once the first rewards can arrive.
        time.sleep(1.0)
        for thread in threads[self.args.clients :]:
            thread.start()
        for thread in threads[: self.args.clients]:
            thread.join()
        self.confirm_seconds = time.monotonic() - started
        self.last_confirmed = time.time()
        self.confirming.clear()
        for thread in threads[self.args.clients :]:
            thread.join()
        watcher.join()
        self.drained_after = self.queue_drained_at - self.last_confirmed

    def _guard(self, target, *args):
        try:
            target(*args)
        except Exception as error:  # noqa: BLE001 - reported as a failed check
            with self.lock:
                self.errors.append(f"{target.__name__}: {error!r}")

    def _confirm_referees(self, todo):
        call = self.server.client()
        while True:
            try:
                order_id = todo.get_nowait()
            except queue.Empty:
                return
            before = time.monotonic()
            call("sale.order", "action_confirm", [order_id])
            with self.lock:
                self.latencies.append(time.monotonic() - before)
                self.confirmed_at[order_id] = time.time()

    def _spend_once(self, call, partner_id, price):
        """A renewal quotation of ``partner_id`` spending its credit, then
        confirmed: the amount spent, or None when there was none or it was
        spent elsewhere meanwhile (the quotation is cancelled)."""
        order_id = call(
            "sale.order",
            "create",
            {
                "partner_id": partner_id,
                "is_renewal": True,
                "order_line": [
                    (
                        0,
                        0,
                        {"product_id": self.data["product"], "price_unit": price},
                    )
                ],
            },
        )
        try:
            call("sale.order", "action_apply_referral_credit", [order_id])
            call("sale.order", "action_confirm", [order_id])
        except xmlrpc.client.Fault:
            call("sale.order", "action_cancel", [order_id])
            return None
        (order,) = call(
            "sale.order", "read", [order_id], fields=["referral_credit_amount"]
        )
        return order["referral_credit_amount"]

    def _spend(self):
        """Round after round over the sponsors while the referees' orders
        are confirmed: spend what each holds on a renewal."""
        call = self.server.client()
        while self.confirming.is_set():
            for partner_id in self.data["sponsors"]:
                amount = self._spend_once(call, partner_id, RENEWAL_PRICE)
                if amount:
                    with self.lock:
                        self.spent.append((partner_id, amount))
                if not self.confirming.is_set():
                    break

    def _race(self, order_id, barrier):
        call = self.server.client()
        barrier.wait(60)
        try:
            call("sale.order", "action_confirm", [order_id])
        except xmlrpc.client.Fault as fault:
            with self.lock:
                self.refused.append(fault.faultString.strip().splitlines()[-1])
            call("sale.order", "action_cancel", [order_id])
            return
        (order,) = call(
            "sale.order", "read", [order_id], fields=["referral_credit_amount"]
        )
        with self.lock:
            self.spent.append((self.data["race"], order["referral_credit_amount"]))

    def _watch_rewards(self):
        """Poll the database: when each order's sponsor reward appears, and
        when the queue is empty after the last confirmation."""
        from odoo import sql_db

        deadline = None
        self.queue_drained_at = None
        db = sql_db.db_connect(self.server.dbname)
        while True:
            with db.cursor() as cr:
                cr.execute(
                    """SELECT r.first_order_id FROM referral_wallet_transaction t
                         JOIN referral_referral r ON r.id = t.referral_id
                        WHERE t.transaction_type = 'credit'
                          AND r.first_order_id IS NOT NULL"""
                )
                seen = time.time()
                for (order_id,) in cr.fetchall():
                    self.rewarded_at.setdefault(order_id, seen)
                cr.execute("SELECT count(*) FROM partner_lifecycle_queue")
                queued = cr.fetchone()[0]
            if not self.confirming.is_set():
                deadline = deadline or time.monotonic() + self.args.queue_timeout
                if not queued and len(self.rewarded_at) >= len(self.data["orders"]):
                    self.queue_drained_at = time.time()
                    return
                if time.monotonic() > deadline:
                    self.queue_drained_at = time.time()
                    self.errors.append("the queue did not drain in time")
                    return
            time.sleep(0.2)


# Checks ----------------------------------------------------------------------


def check(registry, data, load, server):
    """The invariants: a list of (label, ok, detail)."""
    from odoo import SUPERUSER_ID, api

    checks = []
    with registry.cursor() as cr:
        env = api.Environment(cr, SUPERUSER_ID, {})
        cr.execute(
            """SELECT r.id, count(t.id), COALESCE(SUM(t.amount), 0)
                 FROM referral_referral r
                 LEFT JOIN referral_wallet_transaction t
                   ON t.referral_id = r.id AND t.transaction_type = 'credit'
                  AND t.state = 'posted'
                WHERE r.first_order_id = ANY(%s)
             GROUP BY r.id""",
            [data["orders"]],
        )
        rows = cr.fetchall()
        wrong = [row for row in rows if row[1] != 1 or row[2] != REWARD]
        checks.append(
            (
                "one reward per referral",
                len(rows) == len(data["orders"]) and not wrong,
                f"{len(rows)} referrals, {len(wrong)} without exactly one reward",
            )
        )
        rewards = {}
        cr.execute(
            """SELECT r.sponsor_id, count(*) FROM referral_referral r
                WHERE r.first_order_id = ANY(%s) GROUP BY r.sponsor_id""",
            [data["orders"]],
        )
        rewards = dict(cr.fetchall())
        spent = {}
        for partner_id, amount in load.spent:
            spent[partner_id] = spent.get(partner_id, 0.0) + amount
        wallets = env["referral.wallet"].search(
            [("partner_id", "in", list(data["initial"]))]
        )
        mismatched = []
        for wallet in wallets:
            partner_id = wallet.partner_id.id
            expected = (
                data["initial"][partner_id]
                + rewards.get(partner_id, 0) * REWARD
                - spent.get(partner_id, 0.0)
            )
            if wallet.currency_id.compare_amounts(wallet.balance, expected):
                mismatched.append(f"{wallet.partner_id.name}: {wallet.balance}")
        checks.append(
            (
                "exact balances",
                len(wallets) == len(data["initial"]) and not mismatched,
                f"{len(wallets)} wallets; {', '.join(mismatched) or 'all exact'}",
            )
        )
        cr.execute(
            """SELECT count(*) FROM (
                   SELECT wallet_id FROM referral_wallet_transaction
                    WHERE state = 'posted' GROUP BY wallet_id
                   HAVING SUM(signed_amount) < 0) AS negative"""
        )
        negative = cr.fetchone()[0]
        checks.append(("no negative balance", not negative, f"{negative} negative"))
        cr.execute(
            """SELECT count(*) FROM (
                   SELECT 1 FROM referral_wallet
                 GROUP BY partner_id, company_id HAVING count(*) > 1) AS twice"""
        )
        twice = cr.fetchone()[0]
        checks.append(
            ("one wallet per customer and company", not twice, f"{twice} doubled")
        )
    race_spent = [amount for partner, amount in load.spent if partner == data["race"]]
    checks.append(
        (
            "same-wallet race: one spends, one refused",
            len(race_spent) == 1 and len(load.refused) == 1,
            f"spent {race_spent}, refused: {load.refused}",
        )
    )
    problems = server.log_problems()
    checks.append(
        (
            "no ERROR nor failed job in the server log",
            not problems,
            f"{len(problems)} line(s)" + "".join(f"\n      {p}" for p in problems[:5]),
        )
    )
    checks.append(
        ("clients without error", not load.errors, "; ".join(load.errors) or "none")
    )
    return checks


# Report ----------------------------------------------------------------------


def report(load, checks, args):
    delays = [
        load.rewarded_at[order_id] - confirmed
        for order_id, confirmed in load.confirmed_at.items()
        if order_id in load.rewarded_at
    ]
    # A reward seen before its confirmation returned (the poll saw it at once).
    delays = [max(delay, 0.0) for delay in delays]
    p95_delay = percentile(delays, 0.95)
    say(
        "",
        f"Load: {args.referees} referees' first orders by {args.clients} clients, "
        f"{len(load.spent)} spending orders confirmed alongside, one same-wallet "
        "race.",
        benchlib.figure(
            "throughput",
            f"{len(load.latencies) / load.confirm_seconds:.1f} confirmations/s "
            f"({load.confirm_seconds:.1f} s)",
        ),
        benchlib.figure(
            "latency",
            f"p50 {statistics.median(load.latencies):.2f} s, "
            f"p95 {percentile(load.latencies, 0.95):.2f} s",
        ),
        benchlib.figure(
            "confirmation->reward",
            f"p50 {statistics.median(delays) if delays else float('nan'):.1f} s, "
            f"p95 {p95_delay:.1f} s, max {max(delays, default=float('nan')):.1f} s "
            f"(target p95 < {TARGET_DELAY_P95:.0f} s: "
            f"{benchlib.verdict(p95_delay < TARGET_DELAY_P95)})",
        ),
        benchlib.figure(
            "queue drained",
            f"{load.drained_after:.1f} s after the last confirmation",
        ),
        "",
        "Checks:",
    )
    for label, ok, detail in checks:
        say(f"  {'ok  ' if ok else 'FAIL'} {label}: {detail}")
    return all(ok for _label, ok, _detail in checks) and p95_delay < TARGET_DELAY_P95


def fresh_database(args):
    """``args.db`` with the addon just installed, or a copy of the template."""
    if not args.template:
        benchlib.install(args.db)
        return
    from odoo import sql_db
    from odoo.service.db import exp_db_exist
    from odoo.tools import config

    if not exp_db_exist(args.template):
        benchlib.install(args.template)
    benchlib.drop_database(args.db)
    benchlib.close_registry(args.template)
    from psycopg2 import sql

    create = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
        sql.Identifier(args.db), sql.Identifier(args.template)
    )
    with contextlib.closing(sql_db.db_connect("postgres").cursor()) as cr:
        cr._cnx.autocommit = True
        cr.execute(create)  # pylint: disable=sql-injection (quoted identifiers)
    if os.path.isdir(config.filestore(args.template)):
        shutil.copytree(config.filestore(args.template), config.filestore(args.db))
    say(f"Database {args.db} copied from {args.template}.")


def benchmark(args):
    fresh_database(args)
    registry = benchlib.open_registry(args.db)
    data = prepare(registry, args)
    with Server(args.db) as server:
        load = Load(server, registry, data, args)
        load.warm_up()
        load.run()
        checks = check(registry, data, load, server)
    ok = report(load, checks, args)
    return 0 if ok else 1


def main():
    args = parse_args()
    return benchlib.run(benchmark, args)


if __name__ == "__main__":
    raise SystemExit(main())
