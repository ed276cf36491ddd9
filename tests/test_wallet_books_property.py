# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The books proven by the ledger's random sequences: after every step of
the ledger's state machine (orders, invoices, credit notes, currency
switches, expiry, merges, rewards granted and revoked...), the credit
liability account owes each sponsor exactly its wallet balance plus the
credit on its confirmed orders not invoiced yet."""

import os

from hypothesis import HealthCheck, settings
from hypothesis.stateful import invariant, run_state_machine_as_test

from odoo.tests import tagged

# The module, not its test class: a class imported here would run twice.
from . import test_wallet_ledger_property as ledger_property

# make test: 30 sequences of up to 10 steps (the entries make each step
# heavier); the variable runs more.
EXAMPLES = int(os.environ.get("REFERRAL_BOOKS_EXAMPLES") or 30)
STEPS = 10


class BooksMachine(ledger_property.LedgerMachine):
    """The ledger's machine, its company keeping books."""

    @invariant()
    def books_reconciled(self):
        test = self.test
        test._process_lifecycle_queue()
        test.env.flush_all()
        Report = test.env["referral.credit.reconciliation"]
        Report.invalidate_model()
        for row in Report.search([("company_id", "=", test.company.id)]):
            test.assertTrue(
                row.currency_id.is_zero(row.difference),
                f"{row.partner_id.name}: books {row.liability_amount} != "
                f"wallet {row.wallet_balance} + orders {row.order_credit_amount}",
            )


@tagged("post_install", "-at_install")
class TestWalletBooksProperty(ledger_property.TestWalletLedgerProperty):
    # The ledger's own tests run in their class.
    test_ledger_invariant_holds_after_random_operations = None
    test_invariant_helper_sees_a_wrong_balance = None
    test_reward_invariant_sees_a_second_reward = None

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.program._setup_referral_accounting()
        assert cls.program.accounting_enabled
        # The credit of the demo sponsors, earned before the books.
        cls.env["referral.ledger"]._book_opening_balances(cls.program)

    def test_books_reconciled_after_random_operations(self):
        self._run_books_machine(EXAMPLES)

    def test_books_reconciled_with_taxes_split(self):
        """The same with the credit lowering the taxable base (a tax of the
        chart on the goods): the tax shares keep the liability exact."""
        self.program.credit_tax_mode = "discount"
        self.item.taxes_id = self.company.account_sale_tax_id
        self.assertTrue(self.item.taxes_id)
        self._run_books_machine(max(EXAMPLES * 2 // 3, 1))

    def _run_books_machine(self, examples):
        BooksMachine.test = self
        run_state_machine_as_test(
            BooksMachine,
            settings=settings(
                max_examples=examples,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=not os.environ.get("REFERRAL_LEDGER_RANDOM"),
                suppress_health_check=list(HealthCheck),
                database=None,
            ),
        )

    def test_hand_made_entry_breaks_the_invariant(self):
        """The invariant sees an entry made by hand on the liability."""
        program = self.program
        self.wallets[0]._credit(40.0, name="Earned")
        entry = self.env["account.move"].create(
            {
                "move_type": "entry",
                "journal_id": program.credit_journal_id.id,
                "line_ids": [
                    (
                        0,
                        0,
                        {
                            "account_id": program.credit_liability_account_id.id,
                            "partner_id": self.customer_x.id,
                            "credit": 5.0,
                        },
                    ),
                    (
                        0,
                        0,
                        {
                            "account_id": program.reward_expense_account_id.id,
                            "debit": 5.0,
                        },
                    ),
                ],
            }
        )
        entry.action_post()
        BooksMachine.test = self
        machine = BooksMachine.__new__(BooksMachine)
        machine.test = self
        with self.assertRaisesRegex(AssertionError, "books 45.0 != wallet 40.0"):
            machine.books_reconciled()
