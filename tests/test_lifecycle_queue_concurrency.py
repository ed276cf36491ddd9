# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The queue's job run by Odoo's cron runner (its own transactions, real
cursors) while another transaction spends a sponsor's credit: the job neither
fails nor loses its batch. The part that clashes is left for the next call,
woken at once; the rest commits."""

import threading
from unittest.mock import patch

from psycopg2.errors import SerializationFailure

from odoo import SUPERUSER_ID, Command, api
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from ..models.cron_batches import run_in_savepoints
from ..models.lifecycle.partner_lifecycle_queue import QUEUE_CRON

RACE_PRODUCT = "Queue race product"
REWARD = 50.0


@tagged("post_install", "-at_install")
class TestQueueConcurrency(TransactionCase):
    def setUp(self):
        super().setUp()
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # What an earlier test or the demo left queued goes first.
            env["partner.lifecycle.queue"]._cron_process()
            cron = env.ref(QUEUE_CRON)
            self.cron_id = cron.id
            self.cron_state = cron.read(["nextcall", "lastcall", "failure_count"])[0]
            program = env["referral.program"]._get_company_program(env.company)
            self.program_id = program.id
            self.program_values = program.read(PROGRAM_VALUES)[0]
            program.write(
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
            partners = env["res.partner"].create(
                [
                    {"name": f"Queue Race {name}", "is_company": True}
                    for name in ("Sponsor A", "Referee A", "Sponsor B", "Referee B")
                ]
            )
            self.partner_ids = tuple(partners.ids)
            sponsor_a, referee_a, sponsor_b, referee_b = partners
            wallet_a = env["referral.wallet"]._get_or_create(sponsor_a, env.company)
            wallet_a._credit(100.0, name="Queue race credit")
            env["referral.wallet"]._get_or_create(sponsor_b, env.company)
            self.wallet_a_id = wallet_a.id
            product = env["product.product"].create(
                {"name": RACE_PRODUCT, "type": "service", "list_price": 100.0}
            )
            self.referral_ids = []
            for sponsor, referee in ((sponsor_a, referee_a), (sponsor_b, referee_b)):
                self.referral_ids.append(
                    env["referral.referral"]
                    .create({"sponsor_id": sponsor.id, "referee_id": referee.id})
                    .id
                )
                env["sale.order"].create(
                    {
                        "partner_id": referee.id,
                        "order_line": [Command.create({"product_id": product.id})],
                    }
                ).action_confirm()
        self.addCleanup(self._drop_race_data)

    def _drop_race_data(self):
        partner_ids, referral_ids = self.partner_ids, tuple(self.referral_ids) or (0,)
        with self.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM partner_lifecycle_queue WHERE partner_id IN %s",
                [partner_ids],
            )
            cr.execute(
                "UPDATE referral_referral SET first_order_id = NULL WHERE id IN %s",
                [referral_ids],
            )
            # The journal entries of the rewards (the program books them).
            cr.execute(
                "SELECT DISTINCT move_id FROM account_move_line "
                "WHERE partner_id IN %s",
                [partner_ids],
            )
            move_ids = tuple(row[0] for row in cr.fetchall()) or (0,)
            cr.execute(
                "DELETE FROM referral_wallet_transaction WHERE wallet_id IN "
                "(SELECT id FROM referral_wallet WHERE partner_id IN %s)",
                [partner_ids],
            )
            cr.execute("DELETE FROM account_move WHERE id IN %s", [move_ids])
            cr.execute(
                "DELETE FROM referral_notification WHERE res_model = "
                "'referral.referral' AND res_id IN %s",
                [referral_ids],
            )
            for table in ("mail_activity", "mail_followers"):
                cr.execute(
                    f"DELETE FROM {table} WHERE res_model = 'referral.referral' "  # noqa: S608
                    "AND res_id IN %s",
                    [referral_ids],
                )
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'referral.referral' "
                "AND res_id IN %s",
                [referral_ids],
            )
            cr.execute("DELETE FROM sale_order WHERE partner_id IN %s", [partner_ids])
            cr.execute(
                "DELETE FROM product_template WHERE name->>'en_US' = %s",
                [RACE_PRODUCT],
            )
            cr.execute("DELETE FROM referral_referral WHERE id IN %s", [referral_ids])
            cr.execute(
                "DELETE FROM referral_wallet WHERE partner_id IN %s", [partner_ids]
            )
            cr.execute(
                "DELETE FROM mail_followers WHERE partner_id IN %s", [partner_ids]
            )
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'res.partner' "
                "AND res_id IN %s",
                [partner_ids],
            )
            cr.execute(
                "DELETE FROM partner_lifecycle_history WHERE partner_id IN %s",
                [partner_ids],
            )
            cr.execute(
                "UPDATE res_partner SET user_id = NULL WHERE id IN %s", [partner_ids]
            )
            cr.execute("DELETE FROM res_partner WHERE id IN %s", [partner_ids])
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["referral.program"].browse(self.program_id).write(
                {
                    key: value
                    for key, value in self.program_values.items()
                    if key != "id"
                }
            )
            cr.execute(
                "UPDATE ir_cron SET nextcall = %s, lastcall = %s, failure_count = %s "
                "WHERE id = %s",
                [
                    self.cron_state["nextcall"],
                    self.cron_state["lastcall"] or None,
                    self.cron_state["failure_count"],
                    self.cron_id,
                ],
            )
            cr.execute("DELETE FROM ir_cron_trigger WHERE cron_id = %s", [self.cron_id])

    def _run_cron_job(self):
        """One run of the queue's job as Odoo's cron runner does it: its
        own transactions, its failure count and reschedule."""
        IrCron = self.registry["ir.cron"]
        with self.registry.cursor() as cron_cr:
            job = IrCron._acquire_one_job(cron_cr, self.cron_id)
            self.assertTrue(job, "the queue's job is ready: a trigger woke it")
            IrCron._process_job(self.registry.db_name, cron_cr, job)

    def _read(self, query, params):
        with self.registry.cursor() as cr:
            cr.execute(query, params)
            return cr.fetchall()

    def _rewards(self):
        return dict(
            self._read(
                "SELECT referral_id, SUM(amount) FROM referral_wallet_transaction "
                "WHERE referral_id IN %s AND transaction_type = 'credit' "
                "GROUP BY referral_id",
                [tuple(self.referral_ids)],
            )
        )

    def _spending_during(self, spent):
        """A patch of the job's first lock (its snapshot taken, the queue
        rows read): another transaction spends from A's wallet (a manual
        adjustment) and commits just before, once."""
        Queue = self.registry["partner.lifecycle.queue"]
        lock = Queue._lock_rewarded_rows

        def lock_after_spending(queue, rows):
            if not spent:
                with self.registry.cursor() as cr:
                    env = api.Environment(cr, SUPERUSER_ID, {})
                    env["referral.wallet"].browse(self.wallet_a_id)._debit(30.0)
                spent.append(True)
            return lock(queue, rows)

        return patch.object(Queue, "_lock_rewarded_rows", lock_after_spending)

    def _queued(self):
        return self._read(
            "SELECT partner_id FROM partner_lifecycle_queue WHERE partner_id IN %s",
            [self.partner_ids],
        )

    def test_call_leaves_the_clashing_sponsor_and_wakes_again(self):
        """One call: A's wallet, spent after the call's snapshot, refuses its
        lock; A's referee stays queued and the job is woken again at once,
        B's reward commits."""
        spent = []
        with self.registry.cursor() as cr, self._spending_during(spent):
            env = api.Environment(cr, SUPERUSER_ID, {})
            remaining = env["partner.lifecycle.queue"]._cron_process()
        self.assertTrue(spent)
        self.assertEqual(remaining, 1)
        self._assert_busy_wallet_left_for_next_call()

    def _assert_busy_wallet_left_for_next_call(self):
        """The contact of the first sponsor's wallet (busy) was left queued
        unrewarded, the other rewarded; the job woke itself again at once,
        and its next call rewards the contact left."""
        referral_a, referral_b = self.referral_ids
        self.assertEqual(self._rewards(), {referral_b: REWARD})
        self.assertEqual(self._queued(), [(self.partner_ids[1],)])
        self.assertTrue(
            self._read(
                "SELECT id FROM ir_cron_trigger WHERE cron_id = %s "
                "AND call_at <= (now() at time zone 'UTC')",
                [self.cron_id],
            ),
            "the job woke itself again at once",
        )
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["partner.lifecycle.queue"]._cron_process(), 0)
        self.assertEqual(self._rewards(), {referral_a: REWARD, referral_b: REWARD})

    def test_cron_run_survives_spending_during_the_job(self):
        """Run by Odoo's cron runner: the clash costs a retry, not a failed
        run; every reward once, the wallet's balance exact."""
        spent = []
        (last_progress,) = self._read(
            "SELECT COALESCE(MAX(id), 0) FROM ir_cron_progress", []
        )[0]
        with self._spending_during(spent):
            self._run_cron_job()
        self.assertTrue(spent)
        # Two calls in the run: B done and A left, then A done.
        self.assertEqual(
            self._read(
                "SELECT done, remaining FROM ir_cron_progress "
                "WHERE cron_id = %s AND id > %s ORDER BY id",
                [self.cron_id, last_progress],
            ),
            [(1, 1), (1, 0)],
        )
        (failure_count,) = self._read(
            "SELECT failure_count FROM ir_cron WHERE id = %s", [self.cron_id]
        )[0]
        self.assertEqual(failure_count, 0)
        referral_a, referral_b = self.referral_ids
        self.assertEqual(self._rewards(), {referral_a: REWARD, referral_b: REWARD})
        self.assertFalse(self._queued())
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(
                env["referral.wallet"].browse(self.wallet_a_id).balance,
                100.0 - 30.0 + REWARD,
            )

    def test_spender_waiting_for_the_job_is_not_failed(self):
        """A sponsor spends while the job, not committed yet, holds its
        wallet to post its reward: the spending waits for the job's commit,
        then goes through (its transaction started before: it does not see
        the reward, it is not refused for it); the balance is exact."""
        outcome = {}

        def spend(env):
            with env.cr, mute_logger("odoo.sql_db"):
                try:
                    env["referral.wallet"].browse(self.wallet_a_id)._debit(30.0)
                    outcome["debited"] = True
                except SerializationFailure as error:
                    outcome["refused"] = error
                    env.cr.rollback()

        spender_env = api.Environment(self.registry.cursor(), SUPERUSER_ID, {})
        spender_env.cr.execute("SELECT 1")  # its snapshot predates the job's
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(env["partner.lifecycle.queue"]._cron_process(), 0)
            spender = threading.Thread(target=spend, args=(spender_env,))
            spender.start()
            spender.join(0.5)
            self.assertTrue(spender.is_alive(), "the spending waits for the job")
        spender.join(60)
        self.assertFalse(spender.is_alive())
        self.assertEqual(outcome, {"debited": True})
        referral_a, referral_b = self.referral_ids
        self.assertEqual(self._rewards(), {referral_a: REWARD, referral_b: REWARD})
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(
                env["referral.wallet"].browse(self.wallet_a_id).balance,
                100.0 + REWARD - 30.0,
            )

    def test_call_does_not_wait_for_a_spender_holding_the_wallet(self):
        """A sponsor's spending holds its wallet, not committed yet: the job
        does not wait for it; A's referee stays queued, the job is woken
        again at once, B's reward commits."""
        with self.registry.cursor() as spender_cr:
            spender_env = api.Environment(spender_cr, SUPERUSER_ID, {})
            spender_env["referral.wallet"].browse(self.wallet_a_id)._lock()
            with self.registry.cursor() as cr:
                env = api.Environment(cr, SUPERUSER_ID, {})
                self.assertEqual(env["partner.lifecycle.queue"]._cron_process(), 1)
            spender_cr.rollback()
        self._assert_busy_wallet_left_for_next_call()

    def test_call_stops_starting_chunks_after_its_time(self):
        """Chunks of one contact and no time left after the first: one
        contact done per call, the rest left to the next calls."""
        with self.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            Queue = env["partner.lifecycle.queue"]
            self.assertEqual(Queue._cron_process(chunk_size=1, time_budget=0), 1)
            self.assertEqual(Queue._cron_process(chunk_size=1, time_budget=0), 0)
        referral_a, referral_b = self.referral_ids
        self.assertEqual(self._rewards(), {referral_a: REWARD, referral_b: REWARD})


@tagged("post_install", "-at_install")
class TestCronBatches(TransactionCase):
    def test_split_down_to_the_clashing_group(self):
        """A batch that meets a concurrent update is rolled back and split
        in halves: only the clashing group is given up, the others' work
        stays."""
        calls = []

        def process(groups):
            calls.append(list(groups))
            self.env["res.partner"].create({"name": f"Batch {groups}"})
            if 3 in groups:
                raise SerializationFailure("concurrent update")

        given_up = run_in_savepoints(self.env, [1, 2, 3, 4, 5], process)
        self.assertEqual(given_up, [3])
        self.assertEqual(calls, [[1, 2, 3, 4, 5], [1, 2], [3, 4, 5], [3], [4, 5]])
        names = self.env["res.partner"].search([("name", "=like", "Batch %")])
        self.assertEqual(sorted(names.mapped("name")), ["Batch [1, 2]", "Batch [4, 5]"])


PROGRAM_VALUES = [
    "sponsor_policy",
    "reward_type",
    "reward_fixed_amount",
    "reward_max_amount",
    "yearly_cap_amount",
    "reward_trigger",
    "approval_required",
]
