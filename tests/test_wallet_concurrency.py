# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Two real transactions at the same instant. Uniqueness is held by the
database: one succeeds, the other gets an integrity error, nothing is
half-written. A wallet's balance is held by its row lock: two redemptions
never overdraw it."""

import threading

from psycopg2 import IntegrityError
from psycopg2.errors import SerializationFailure

from odoo import SUPERUSER_ID, Command, api
from odoo.exceptions import UserError
from odoo.tests import TransactionCase, tagged
from odoo.tools import mute_logger

from .common import WalletCommon

RACE_PRODUCT = "Race product"


@tagged("post_install", "-at_install")
class TestLedgerConcurrency(TransactionCase):
    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partners = env["res.partner"].create(
                [
                    {"name": "Race Sponsor", "is_company": True},
                    {"name": "Race Referee", "is_company": True},
                ]
            )
            self.sponsor_id, self.referee_id = partners.ids
            program = env["referral.program"]._get_company_program(env.company)
            self.program_id = program.id
            self.program_values = program.read(PROGRAM_VALUES)[0]
            program.sponsor_policy = "any"
        # Referees a test adds, removed with the others.
        self.other_partner_ids = []
        self.addCleanup(self._drop_race_data)

    def _drop_race_data(self):
        partner_ids = (self.sponsor_id, self.referee_id, *self.other_partner_ids)
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT id FROM referral_referral WHERE sponsor_id IN %s",
                [partner_ids],
            )
            referral_ids = tuple(row[0] for row in cr.fetchall()) or (0,)
            # The reward race's order and credit.
            cr.execute(
                "UPDATE referral_referral SET first_order_id = NULL WHERE id IN %s",
                [referral_ids],
            )
            # The journal entries of the credit (the program books it).
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
            cr.execute("DELETE FROM sale_order WHERE partner_id IN %s", [partner_ids])
            cr.execute(
                "DELETE FROM product_template WHERE name->>'en_US' = %s",
                [RACE_PRODUCT],
            )
            cr.execute(
                "DELETE FROM mail_activity WHERE res_model = 'referral.referral' "
                "AND res_id IN %s",
                [referral_ids],
            )
            cr.execute(
                "DELETE FROM mail_message WHERE model = 'referral.referral' "
                "AND res_id IN %s",
                [referral_ids],
            )
            cr.execute(
                "DELETE FROM mail_followers WHERE res_model = 'referral.referral' "
                "AND res_id IN %s",
                [referral_ids],
            )
            cr.execute("DELETE FROM referral_referral WHERE id IN %s", [referral_ids])
            cr.execute(
                "DELETE FROM referral_wallet WHERE partner_id IN %s", [partner_ids]
            )
            cr.execute(
                "DELETE FROM mail_followers WHERE partner_id IN %s", [partner_ids]
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

    def _race(self, operation):
        """Run ``operation(env)`` in two transactions at once: the second
        starts while the first, not committed yet, holds its row. Returns
        the outcome of the second."""
        outcome, started = {}, threading.Event()

        def second(env):
            with env.cr, mute_logger("odoo.sql_db"):
                env.cr.execute("SELECT 1")  # the snapshot predates the commit
                started.set()
                try:
                    operation(env)
                    env.flush_all()
                    outcome["done"] = True
                except (IntegrityError, SerializationFailure) as error:
                    outcome["refused"] = error
                    env.cr.rollback()

        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            operation(env)
            env.flush_all()
            other_env = api.Environment(self.env.registry.cursor(), SUPERUSER_ID, {})
            thread = threading.Thread(target=second, args=(other_env,))
            thread.start()
            started.wait(30)
            thread.join(0.5)
            self.assertTrue(thread.is_alive(), "the second waits on the first's row")
        thread.join(60)
        self.assertFalse(thread.is_alive())
        return outcome

    def test_two_first_rewards_open_one_wallet(self):
        def open_wallet(env):
            env["referral.wallet"]._get_or_create(
                env["res.partner"].browse(self.sponsor_id), env.company
            )

        outcome = self._race(open_wallet)
        self.assertNotIn("done", outcome)
        self.assertIn("partner_company_uniq", str(outcome["refused"]))
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT COUNT(*) FROM referral_wallet WHERE partner_id = %s",
                [self.sponsor_id],
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def test_two_jobs_post_one_reward(self):
        """The queue's job run twice at once for the referee's first order:
        the ledger locks the referral row, then the sponsor's wallet row,
        before writing; the second job waits, then fails to serialize (Odoo
        retries it, and the retry finds the reward posted): one reward."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            product = env["product.product"].create(
                {"name": RACE_PRODUCT, "type": "service", "list_price": 100.0}
            )
            referral = env["referral.referral"].create(
                {"sponsor_id": self.sponsor_id, "referee_id": self.referee_id}
            )
            # The wallet exists: the rows locked decide, not its creation.
            env["referral.wallet"]._get_or_create(referral.sponsor_id, env.company)
            env["sale.order"].create(
                {
                    "partner_id": self.referee_id,
                    "order_line": [Command.create({"product_id": product.id})],
                }
            ).action_confirm()
            referral_id = referral.id

        def grant(env):
            env["referral.referral"].browse(referral_id)._grant_rewards()

        outcome = self._race(grant)
        self.assertNotIn("done", outcome)
        self.assertIsInstance(outcome["refused"], SerializationFailure)
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT COUNT(*) FROM referral_wallet_transaction "
                "WHERE referral_id = %s AND transaction_type = 'credit'",
                [referral_id],
            )
            self.assertEqual(cr.fetchone()[0], 1)

    def test_two_rewards_within_a_yearly_cap_at_once(self):
        """Two referrals of one sponsor rewarded at once, the program's
        yearly cap room for one reward: the first locks the wallet and marks
        it (the next reward reads what this one earned); the second waits,
        then fails to serialize (Odoo retries it, and the retry finds the
        cap reached): the cap holds."""
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["referral.program"].browse(self.program_id).write(
                {
                    "reward_type": "fixed",
                    "reward_fixed_amount": 50.0,
                    "reward_max_amount": 0.0,
                    "yearly_cap_amount": 50.0,
                    "reward_trigger": "order_confirmed",
                    "approval_required": False,
                }
            )
            other = env["res.partner"].create(
                {"name": "Race Referee 2", "is_company": True}
            )
            self.other_partner_ids.append(other.id)
            product = env["product.product"].create(
                {"name": RACE_PRODUCT, "type": "service", "list_price": 100.0}
            )
            env["referral.wallet"]._get_or_create(
                env["res.partner"].browse(self.sponsor_id), env.company
            )
            referral_ids = []
            for referee_id in (self.referee_id, other.id):
                referral_ids.append(
                    env["referral.referral"]
                    .create({"sponsor_id": self.sponsor_id, "referee_id": referee_id})
                    .id
                )
                env["sale.order"].create(
                    {
                        "partner_id": referee_id,
                        "order_line": [Command.create({"product_id": product.id})],
                    }
                ).action_confirm()
        to_grant = iter(referral_ids)

        def grant(env):
            env["referral.referral"].browse(next(to_grant))._grant_rewards()

        outcome = self._race(grant)
        self.assertNotIn("done", outcome)
        self.assertIsInstance(outcome["refused"], SerializationFailure)
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            # Odoo's retry of the second: nothing left under the cap.
            env["referral.referral"].browse(referral_ids[1])._grant_rewards()
            cr.execute(
                "SELECT SUM(amount) FROM referral_wallet_transaction "
                "WHERE referral_id IN %s AND transaction_type = 'credit'",
                [tuple(referral_ids)],
            )
            self.assertEqual(cr.fetchone()[0], 50.0)

    def test_two_referrals_of_one_referee_at_once(self):
        def refer(env):
            env["referral.referral"].create(
                {"sponsor_id": self.sponsor_id, "referee_id": self.referee_id}
            )

        outcome = self._race(refer)
        self.assertNotIn("done", outcome)
        self.assertIn("single_active_referral", str(outcome["refused"]))
        with self.env.registry.cursor() as cr:
            cr.execute(
                "SELECT COUNT(*) FROM referral_referral WHERE referee_id = %s",
                [self.referee_id],
            )
            self.assertEqual(cr.fetchone()[0], 1)


@tagged("post_install", "-at_install")
class TestWalletConcurrency(WalletCommon):
    """Two redemptions at the same instant, on two real transactions."""

    def setUp(self):
        super().setUp()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            partner = env["res.partner"].create(
                {"name": "Race Corp", "is_company": True}
            )
            wallet = env["referral.wallet"]._get_or_create(partner, env.company)
            wallet._credit(100.0, name="Race credit")
            self.partner_id, self.wallet_id = partner.id, wallet.id
        self.addCleanup(self._drop_race_data)

    def _drop_race_data(self):
        with self.env.registry.cursor() as cr:
            # The ledger refuses to delete posted rows: that is the point.
            # The journal entries of the credit (the program books it).
            cr.execute(
                "SELECT DISTINCT move_id FROM account_move_line "
                "WHERE partner_id = %s",
                [self.partner_id],
            )
            move_ids = tuple(row[0] for row in cr.fetchall()) or (0,)
            cr.execute(
                "DELETE FROM referral_wallet_transaction WHERE wallet_id = %s",
                [self.wallet_id],
            )
            cr.execute("DELETE FROM account_move WHERE id IN %s", [move_ids])
            cr.execute("DELETE FROM referral_wallet WHERE id = %s", [self.wallet_id])
            cr.execute(
                "DELETE FROM mail_followers WHERE partner_id = %s", [self.partner_id]
            )
            cr.execute("DELETE FROM res_partner WHERE id = %s", [self.partner_id])

    def _debit_in_new_transaction(self, env, amount, outcome, started):
        with env.cr, mute_logger("odoo.sql_db"):
            env.cr.execute("SELECT 1")  # the snapshot predates the other commit
            started.set()
            try:
                env["referral.wallet"].browse(self.wallet_id)._debit(amount)
                outcome["debited"] = True
            except (UserError, SerializationFailure) as error:
                outcome["refused"] = error
                env.cr.rollback()

    def test_two_redemptions_cannot_overdraw(self):
        outcome, started = {}, threading.Event()
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            env["referral.wallet"].browse(self.wallet_id)._debit(80.0)
            # The other redemption starts while this one holds the lock (its
            # environment is made here: the test holds the registry lock).
            other_env = api.Environment(self.env.registry.cursor(), SUPERUSER_ID, {})
            other = threading.Thread(
                target=self._debit_in_new_transaction,
                args=(other_env, 80.0, outcome, started),
            )
            other.start()
            started.wait(30)
            other.join(0.5)
            self.assertTrue(other.is_alive(), "the second debit waits on the lock")
        # Leaving the block committed the first debit and released the lock.
        other.join(60)
        self.assertFalse(other.is_alive())
        self.assertNotIn("debited", outcome)
        self.assertIn("refused", outcome)
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            wallet = env["referral.wallet"].browse(self.wallet_id)
            self.assertEqual(wallet.balance, 20.0)
            # Odoo retries a request that failed to serialize: the retry reads
            # the new balance and refuses cleanly.
            with self.assertRaisesRegex(UserError, "less than the"):
                wallet._debit(80.0)

    def test_expiry_cron_called_again_after_a_concurrent_spending(self):
        """The expiry job's transaction started before a spending committed
        on the same wallet: it cannot lock the wallet; its call is rolled
        back, not failed, and the job woken again at once; the next call
        expires the credit."""
        cron_xmlid = "sale_referral_lifecycle.ir_cron_expire_referral_credit"
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            wallet = env["referral.wallet"].browse(self.wallet_id)
            wallet._credit(20.0, name="Overdue credit", expiry_date="2020-01-01")
            cron_id = env.ref(cron_xmlid).id
            cr.execute("SELECT COALESCE(MAX(id), 0) FROM ir_cron_trigger")
            (last_trigger,) = cr.fetchone()
        self.addCleanup(self._drop_triggers, cron_id, last_trigger)
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            cr.execute("SELECT 1")  # the job's snapshot predates the spending
            with self.env.registry.cursor() as other_cr:
                other_env = api.Environment(other_cr, SUPERUSER_ID, {})
                other_env["referral.wallet"].browse(self.wallet_id)._lock()
            result = env["referral.wallet.transaction"]._cron_expire_credits()
            self.assertIsNone(result)
            cr.execute(
                "SELECT count(*) FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
                [cron_id, last_trigger],
            )
            self.assertEqual(cr.fetchone()[0], 1, "the job is woken again")
        with self.env.registry.cursor() as cr:
            env = api.Environment(cr, SUPERUSER_ID, {})
            self.assertEqual(
                env["referral.wallet"].browse(self.wallet_id).balance, 120.0
            )
            self.assertEqual(
                env["referral.wallet.transaction"]._cron_expire_credits(), 0
            )
            self.assertEqual(
                env["referral.wallet"].browse(self.wallet_id).balance, 100.0
            )

    def _drop_triggers(self, cron_id, last_trigger):
        with self.env.registry.cursor() as cr:
            cr.execute(
                "DELETE FROM ir_cron_trigger WHERE cron_id = %s AND id > %s",
                [cron_id, last_trigger],
            )


PROGRAM_VALUES = [
    "sponsor_policy",
    "reward_type",
    "reward_fixed_amount",
    "reward_max_amount",
    "yearly_cap_amount",
    "reward_trigger",
    "approval_required",
]
