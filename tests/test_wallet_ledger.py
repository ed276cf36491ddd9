# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta
from psycopg2.errors import UniqueViolation

from odoo import fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import new_test_user, tagged
from odoo.tools import mute_logger

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletLedger(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.today = fields.Date.context_today(cls.env["referral.wallet"])

    def _credit(self, wallet, amount, months=None, **values):
        expiry = self.today + relativedelta(months=months) if months else False
        return wallet._credit(amount, expiry_date=expiry, name="Test credit", **values)

    def test_one_wallet_per_commercial_entity_and_company(self):
        wallet = self._wallet(self.sponsor_contact)
        self.assertEqual(wallet.partner_id, self.sponsor)
        self.assertEqual(self._wallet(self.sponsor), wallet)
        other = self._wallet(self.sponsor, self.other_company)
        self.assertNotEqual(other, wallet)
        self.assertEqual(other.currency_id, self.other_company.currency_id)
        with (
            mute_logger("odoo.sql_db"),
            self.assertRefused(UniqueViolation, "referral_wallet_partner_company_uniq"),
        ):
            self.Wallet.create(
                {"partner_id": self.sponsor.id, "company_id": self.company.id}
            )

    def test_balance_is_sum_of_posted_transactions(self):
        wallet = self._wallet()
        self._credit(wallet, 100.0)
        self._credit(wallet, 40.0, posted=False)
        wallet._debit(30.0)
        self.assertEqual(wallet.balance, 70.0)
        self.assertEqual(wallet.pending_amount, 40.0)
        self.assertEqual(
            sorted(wallet.transaction_ids.mapped("signed_amount")), [-30.0, 40.0, 100.0]
        )

    def test_posted_transaction_is_immutable(self):
        wallet = self._wallet()
        credit = self._credit(wallet, 100.0)
        # Nobody may write or delete transactions: no access right allows it.
        for user in (self.approver, self.accountant, self.salesman):
            with self.assertRefused(AccessError, "not allowed"):
                credit.with_user(user).write({"amount": 1000.0})
            with self.assertRefused(AccessError, "not allowed"):
                credit.with_user(user).unlink()
        # Even the flows (superuser) cannot rewrite a posted one.
        with self.assertRefused(UserError, "cannot be changed"):
            credit.write({"amount": 1000.0})
        with self.assertRefused(UserError, "audit trail"):
            credit.unlink()
        # Even the ledger field is written by the ledger only (superuser).
        with self.assertRefused(AccessError, "not allowed"):
            credit.with_user(self.approver).write({"remaining_amount": 0.0})
        self.assertRecordValues(credit, [{"amount": 100.0, "remaining_amount": 100.0}])

    def test_amount_must_be_positive_and_adjustment_needs_reason(self):
        wallet = self._wallet()
        with self.assertRefused(ValidationError, "must be positive"):
            self._credit(wallet, -5.0)
        with self.assertRefused(ValidationError, "needs a reason"):
            wallet._credit(5.0, transaction_type="adjustment", reason=" ")
        adjustment = wallet._credit(
            5.0, transaction_type="adjustment", reason="Goodwill"
        )
        self.assertEqual(adjustment.signed_amount, 5.0)

    def test_debit_consumes_oldest_expiry_first(self):
        wallet = self._wallet()
        late = self._credit(wallet, 50.0, months=6)
        never = self._credit(wallet, 50.0)
        soon = self._credit(wallet, 50.0, months=1)
        debit = wallet._debit(80.0)
        self.assertRecordValues(
            soon | late | never,
            [
                {"remaining_amount": 0.0},
                {"remaining_amount": 20.0},
                {"remaining_amount": 50.0},
            ],
        )
        self.assertEqual(debit.expiry_date, late.expiry_date)
        self.assertEqual(debit.signed_amount, -80.0)
        self.assertEqual(wallet.balance, 70.0)

    def test_debit_beyond_balance_refused_and_nothing_written(self):
        wallet = self._wallet()
        credit = self._credit(wallet, 50.0)
        with self.assertRefused(UserError, "less than the"):
            wallet._debit(50.02)
        self.assertEqual(credit.remaining_amount, 50.0)
        self.assertEqual(wallet.transaction_ids, credit)
        # One rounding step over (a currency conversion): the balance is spent.
        debit = wallet._debit(50.01)
        self.assertEqual(debit.amount, 50.0)
        self.assertEqual(wallet.balance, 0.0)

    def test_reversals(self):
        wallet = self._wallet()
        credit = self._credit(wallet, 100.0, months=3)
        debit = wallet._debit(60.0)
        given_back = debit._reverse(amount=25.0)
        # The credit the debit consumed is restored, with its own expiry.
        self.assertRecordValues(
            given_back,
            [
                {
                    "transaction_type": "reversal",
                    "direction": "in",
                    "amount": 25.0,
                    "remaining_amount": 0.0,
                    "expiry_date": credit.expiry_date,
                    "reversed_transaction_id": debit.id,
                }
            ],
        )
        self.assertEqual(credit.remaining_amount, 65.0)
        # The rest of the debit, not more.
        self.assertEqual(debit._reverse().amount, 35.0)
        self.assertFalse(debit._reverse())
        self.assertEqual(wallet.balance, 100.0)
        self.assertEqual(credit.remaining_amount, 100.0)
        # A reversed credit loses only what is left of it.
        wallet._debit(60.0)
        self.assertEqual(credit.remaining_amount, 40.0)
        lost = credit._reverse()
        self.assertRecordValues(
            lost, [{"direction": "out", "amount": 40.0, "remaining_amount": 0.0}]
        )
        self.assertEqual(credit.remaining_amount, 0.0)
        self.assertFalse(credit._reverse())
        self.assertEqual(wallet.balance, 0.0)

    def test_expiry_cron_expires_unused_part_in_batches(self):
        wallet = self._wallet()
        old = self._credit(wallet, 100.0, months=2)
        older = self._credit(wallet, 30.0, months=1)
        fresh = self._credit(wallet, 10.0, months=6)
        wallet._debit(40.0)  # all of `older`, 10 of `old`
        with self.assertRefused(UserError, "cannot be changed"):
            old.expiry_date = self.today
        self.env.cr.execute(
            "UPDATE referral_wallet_transaction SET expiry_date = %s WHERE id IN %s",
            [self.today - relativedelta(days=1), (old.id, older.id)],
        )
        self.env["referral.wallet.transaction"].invalidate_model(["expiry_date"])
        remaining = self.Transaction._cron_expire_credits(batch_size=1)
        self.assertEqual(remaining, 0)  # `older` was fully spent: nothing to expire
        expiry = wallet.transaction_ids.filtered(
            lambda t: t.transaction_type == "expiry"
        )
        self.assertRecordValues(
            expiry,
            [
                {
                    "amount": 90.0,
                    "signed_amount": -90.0,
                    "reversed_transaction_id": old.id,
                    "state": "posted",
                }
            ],
        )
        self.assertEqual(old.remaining_amount, 0.0)
        self.assertEqual(fresh.remaining_amount, 10.0)
        self.assertEqual(wallet.balance, 10.0)
        self.assertEqual(self.Transaction._cron_expire_credits(), 0)
        self.assertEqual(len(wallet.transaction_ids), 5)

    def test_expiry_cron_reports_what_remains(self):
        wallets = self._wallet() | self._wallet(self._create_customer("Second Sponsor"))
        for wallet in wallets:
            self._credit(wallet, 10.0, months=1)
        self.env.cr.execute(
            "UPDATE referral_wallet_transaction SET expiry_date = %s "
            "WHERE wallet_id IN %s",
            [self.today - relativedelta(days=1), tuple(wallets.ids)],
        )
        self.Transaction.invalidate_model(["expiry_date"])
        self.assertEqual(self.Transaction._cron_expire_credits(batch_size=1), 1)
        self.assertEqual(self.Transaction._cron_expire_credits(batch_size=1), 0)
        self.assertEqual(wallets.mapped("balance"), [0.0, 0.0])

    def test_access_per_group(self):
        wallet = self._wallet()
        credit = self._credit(wallet, 100.0)
        # Salespeople and billing users read wallets, never write the ledger.
        for user in (self.salesman, self.accountant):
            self.assertEqual(wallet.with_user(user).balance, 100.0)
            with self.assertRefused(AccessError, "not allowed to create"):
                self.Transaction.with_user(user).create(
                    {
                        "wallet_id": wallet.id,
                        "transaction_type": "credit",
                        "amount": 5.0,
                        "name": "Self-service",
                    }
                )
            with self.assertRefused(AccessError, "reward approvers"):
                credit.with_user(user).action_reverse()
        # A portal user sees its own wallet only.
        portal = new_test_user(
            self.env,
            login="ref_portal",
            groups="base.group_portal",
            partner_id=self.sponsor_contact.id,
        )
        other = self._wallet(self._create_customer("Someone Else"))
        visible = self.Wallet.with_user(portal).search([])
        self.assertEqual(visible, wallet)
        self.assertNotIn(other, visible)

    def test_approver_reverses_posted_credit(self):
        wallet = self._wallet()
        credit = self._credit(wallet, 100.0)
        reversal = credit.with_user(self.approver).action_reverse()
        self.assertEqual(reversal.amount, 100.0)
        self.assertEqual(wallet.balance, 0.0)
