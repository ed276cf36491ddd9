# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Referral credit in the books: the ledger's entries, the credit lines on
the liability account, the reconciliation against the wallets."""

from datetime import timedelta

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, new_test_user, tagged

from .common import WalletCommon


class BooksCommon(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.company.chart_template:
            cls.env["account.chart.template"].try_loading(
                "generic_coa", cls.company, install_demo=False
            )
        cls.program._setup_referral_accounting()
        cls.liability = cls.program.credit_liability_account_id
        cls.expense = cls.program.reward_expense_account_id
        cls.expired = cls.program.expired_credit_account_id
        cls.journal = cls.program.credit_journal_id
        cls.today = fields.Date.context_today(cls.Wallet)
        # A tax of the chart: its amounts go to its own account.
        cls.vat_20 = cls.company.account_sale_tax_id.copy(
            {"name": "VAT 20", "amount": 20.0}
        )
        cls.goods = cls.env["product.product"].create(
            {
                "name": "Subscription",
                "type": "service",
                "list_price": 1000.0,
                "invoice_policy": "order",
                "taxes_id": [Command.set(cls.vat_20.ids)],
            }
        )
        cls.program.write({"redeem_scope": "any"})

    def _reconciliation(self, partner=None, company=None):
        self.env.flush_all()
        Report = self.env["referral.credit.reconciliation"]
        Report.invalidate_model()
        return Report.search(
            [
                ("partner_id", "=", (partner or self.sponsor).id),
                ("company_id", "=", (company or self.company).id),
            ]
        )

    def _assert_reconciled(self, partner=None, company=None):
        row = self._reconciliation(partner, company)
        self.assertTrue(
            all(row.currency_id.is_zero(r.difference) for r in row),
            f"books {row.liability_amount} != wallet {row.wallet_balance} + "
            f"orders {row.order_credit_amount}",
        )
        return row

    def _liability(self, partner=None):
        self.env.flush_all()
        lines = self.env["account.move.line"].search(
            [
                ("account_id", "=", self.liability.id),
                ("partner_id", "=", (partner or self.sponsor).id),
                ("parent_state", "=", "posted"),
            ]
        )
        return -sum(lines.mapped("balance"))

    def _invoice(self, amount=1000.0, partner=None):
        return self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": (partner or self.sponsor).id,
                "invoice_date": self.today,
                "invoice_line_ids": [
                    Command.create({"product_id": self.goods.id, "price_unit": amount})
                ],
            }
        )

    def _refund(self, invoice):
        wizard = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "reason": "test"})
        )
        refund = self.env["account.move"].browse(wizard.refund_moves()["res_id"])
        refund.action_post()
        return refund


@tagged("post_install", "-at_install")
class TestWalletBooksSettings(BooksCommon):
    def test_program_accounts_set_on_a_company_with_a_chart(self):
        self.assertTrue(self.program.accounting_enabled)
        self.assertEqual(self.liability.account_type, "liability_current")
        self.assertEqual(
            self.liability.with_context(lang="en_US").name,
            "Referral credit owed to customers",
        )
        self.assertEqual(self.expense.account_type, "expense")
        self.assertEqual(self.expired.account_type, "income_other")
        self.assertEqual(self.journal.type, "general")
        # Set up again: the same accounts, none created twice.
        count = self.env["account.account"].search_count([])
        self.program.copy({"name": "Second program"})
        self.assertEqual(self.env["account.account"].search_count([]), count)

    def test_company_without_chart_books_nothing_until_a_chart_is_loaded(self):
        company = self.env["res.company"].create({"name": "No Chart Co"})
        program = self.env["referral.program"]._get_company_program(company)
        self.assertFalse(program.company_has_chart)
        self.assertFalse(program.accounting_enabled)
        self.assertFalse(program.credit_liability_account_id)
        wallet = self.Wallet._get_or_create(self.sponsor, company)
        transaction = wallet._credit(50.0, name="Before the chart")
        self.assertFalse(transaction.account_move_id)
        with self.assertRefused(UserError, "no chart of accounts"):
            program.action_setup_accounting()
        self.env["account.chart.template"].try_loading(
            "generic_coa", company, install_demo=False
        )
        self.assertTrue(program.accounting_enabled)
        self.assertIn(company, program.credit_liability_account_id.company_ids)
        self.assertEqual(program.credit_journal_id.company_id, company)
        # Nothing of the past is booked: the difference shows...
        self.assertEqual(self._reconciliation(company=company).difference, -50.0)
        # ... until the opening balances are booked, once.
        accountant = new_test_user(
            self.env,
            login="ref_books_accountant",
            groups="account.group_account_user,sales_team.group_sale_manager",
            company_ids=[Command.set((self.company | company).ids)],
        )
        program.with_user(accountant).with_company(
            company
        ).action_book_opening_balances()
        row = self._assert_reconciled(company=company)
        self.assertEqual(row.liability_amount, 50.0)
        result = (
            program.with_user(accountant)
            .with_company(company)
            .action_book_opening_balances()
        )
        self.assertEqual(result["type"], "ir.actions.client")

    def test_opening_balances_for_accountants_only(self):
        with self.assertRefused(UserError, "accountants"):
            self.program.with_user(self.sale_manager).action_book_opening_balances()

    def test_accounting_on_needs_the_accounts(self):
        with self.assertRefused(Exception, "liability"):
            self.program.credit_liability_account_id = False
            self.program.flush_recordset()


@tagged("post_install", "-at_install")
class TestWalletBooksEntries(BooksCommon):
    def test_reward_books_expense_against_liability(self):
        referral, _order = self._reward_referral("Books Ltd", price=1200.0)
        reward = referral.transaction_ids.filtered(
            lambda t: t.transaction_type == "credit"
        )
        entry = reward.account_move_id
        self.assertEqual(entry.state, "posted")
        self.assertEqual(entry.journal_id, self.journal)
        self.assertEqual(entry.date, reward.date)
        self.assertEqual(entry.referral_transaction_ids, reward)
        self.assertEqual(entry.currency_id, self.company.currency_id)
        self.assertRecordValues(
            entry.line_ids.sorted("balance"),
            [
                {"account_id": self.liability.id, "balance": -120.0},
                {"account_id": self.expense.id, "balance": 120.0},
            ],
        )
        self.assertEqual(entry.line_ids.partner_id, self.sponsor)
        self._assert_reconciled()

    def test_pending_reward_booked_when_approved(self):
        self.program.approval_required = True
        referral, _order = self._reward_referral("Pending Ltd", price=1000.0)
        reward = referral.transaction_ids
        self.assertEqual(reward.state, "pending")
        self.assertFalse(reward.account_move_id)
        reward.with_user(self.approver).action_approve()
        self.assertEqual(reward.account_move_id.state, "posted")
        self._assert_reconciled()

    def test_revoked_reward_reverses_its_entry(self):
        referral, order = self._reward_referral("Revoked Ltd", price=1000.0)
        reward = referral.transaction_ids
        order._action_cancel()
        self._process_lifecycle_queue()
        reversal = referral.transaction_ids.filtered(
            lambda t: t.transaction_type == "reversal"
        )
        self.assertEqual(reversal.amount, 100.0)
        self.assertEqual(
            reversal.account_move_id.reversed_entry_id, reward.account_move_id
        )
        self.assertEqual(self._liability(), 0.0)
        self._assert_reconciled()

    def test_revoked_reward_partly_spent_reverses_what_is_left(self):
        referral, order = self._reward_referral("Spent Ltd", price=1000.0)
        invoice = self._invoice(500.0)
        self.program.credit_tax_mode = "payment"
        invoice._apply_referral_credit(self._wallet(), 60.0)
        invoice.action_post()
        self._assert_reconciled()
        order._action_cancel()
        self._process_lifecycle_queue()
        reversal = referral.transaction_ids.filtered(
            lambda t: t.transaction_type == "reversal"
        )
        self.assertEqual(reversal.amount, 40.0)
        self.assertEqual(
            sum(reversal.account_move_id.line_ids.filtered("debit").mapped("debit")),
            40.0,
        )
        self.assertEqual(self._liability(), 0.0)
        self._assert_reconciled()
        # The credit note gives the 60 back: revoked at once, in the books too.
        self._refund(invoice)
        self.assertEqual(self._wallet().balance, 0.0)
        self._assert_reconciled()

    def test_expiry_books_liability_against_expired_income(self):
        credit = self._wallet()._credit(
            30.0, name="Old credit", expiry_date=self.today - timedelta(days=1)
        )
        self.Transaction._cron_expire_credits()
        expiry = credit.reversal_ids
        self.assertEqual(expiry.transaction_type, "expiry")
        self.assertRecordValues(
            expiry.account_move_id.line_ids.sorted("balance"),
            [
                {"account_id": self.expired.id, "balance": -30.0},
                {"account_id": self.liability.id, "balance": 30.0},
            ],
        )
        self._assert_reconciled()

    def test_adjustment_against_the_account_picked(self):
        other = self.env["account.account"].search(
            [
                ("company_ids", "in", self.company.ids),
                ("account_type", "=", "expense"),
                ("id", "!=", self.expense.id),
            ],
            limit=1,
        )
        wallet = self._wallet()
        for direction, amount, account in (
            ("in", 80.0, self.expense),
            ("out", 30.0, other),
        ):
            form = Form(
                self.env["referral.wallet.adjust.wizard"]
                .with_user(self.approver)
                .with_context(default_wallet_id=wallet.id)
            )
            self.assertEqual(form.account_id, self.expense)
            form.direction = direction
            form.amount = amount
            form.reason = "Goodwill"
            form.account_id = account
            form.save().action_apply()
        adjustments = wallet.transaction_ids.filtered(
            lambda t: t.transaction_type == "adjustment"
        ).sorted("id")
        self.assertRecordValues(
            adjustments[1].account_move_id.line_ids.sorted("balance"),
            [
                {"account_id": other.id, "balance": -30.0},
                {"account_id": self.liability.id, "balance": 30.0},
            ],
        )
        self.assertEqual(
            adjustments[0].account_move_id.line_ids.filtered("debit").account_id,
            self.expense,
        )
        self._assert_reconciled()

    def test_accountant_adjusts_billing_user_cannot(self):
        accountant = new_test_user(
            self.env,
            login="ref_books_user",
            groups="account.group_account_user",
        )
        wizard = (
            self.env["referral.wallet.adjust.wizard"]
            .with_user(accountant)
            .create({"wallet_id": self._wallet().id, "amount": 10.0, "reason": "Fix"})
        )
        wizard.action_apply()
        self._assert_reconciled()
        with self.assertRaises(AccessError):
            self.env["referral.wallet.adjust.wizard"].with_user(self.accountant).create(
                {"wallet_id": self._wallet().id, "amount": 10.0, "reason": "x"}
            )


@tagged("post_install", "-at_install")
class TestWalletBooksCreditLines(BooksCommon):
    def test_worked_example_tax_split(self):
        """1,000 + 20 % VAT, 120 of credit in the discount mode: the credit
        line debits the liability 100 (VAT 20 less), the ledger books the
        tax share 20 on the liability against the reward expense."""
        self.program.credit_tax_mode = "discount"
        self._wallet()._credit(120.0, name="Reward")
        invoice = self._invoice(1000.0)
        invoice._apply_referral_credit(self._wallet(), 120.0)
        invoice.action_post()
        self.assertEqual(invoice.amount_total, 1080.0)
        self.assertEqual(invoice.amount_tax, 180.0)
        credit_line = invoice.invoice_line_ids.filtered("referral_credit_wallet_id")
        self.assertEqual(credit_line.account_id, self.liability)
        self.assertEqual(credit_line.balance, 100.0)
        share = self.env["account.move"].search(
            [("referral_credit_line_id", "=", credit_line.id)]
        )
        self.assertRecordValues(
            share.line_ids.sorted("balance"),
            [
                {"account_id": self.expense.id, "balance": -20.0},
                {"account_id": self.liability.id, "balance": 20.0},
            ],
        )
        self.assertEqual(self._wallet().balance, 0.0)
        self.assertEqual(self._liability(), 0.0)
        self._assert_reconciled()
        # The credit note gives the 120 back: 100 + 20 on the liability.
        self._refund(invoice)
        self.assertEqual(self._wallet().balance, 120.0)
        self.assertEqual(self._liability(), 120.0)
        self._assert_reconciled()
        # Reset and cancelled: the tax share follows.
        invoice2 = self._invoice(1000.0)
        invoice2._apply_referral_credit(self._wallet(), 60.0)
        invoice2.action_post()
        self._assert_reconciled()
        invoice2.button_draft()
        self._assert_reconciled()
        # Credit applied again on the draft (its former line deleted).
        invoice2._apply_referral_credit(self._wallet(), 30.0)
        invoice2.action_post()
        self.assertEqual(self._liability(), 90.0)
        self._assert_reconciled()
        invoice2.button_draft()
        invoice2.button_cancel()
        self.assertEqual(self._liability(), 120.0)
        self._assert_reconciled()

    def test_payment_mode_credit_line_on_liability(self):
        self.program.credit_tax_mode = "payment"
        self._wallet()._credit(120.0, name="Reward")
        invoice = self._invoice(1000.0)
        invoice._apply_referral_credit(self._wallet(), 120.0)
        invoice.action_post()
        credit_line = invoice.invoice_line_ids.filtered("referral_credit_wallet_id")
        self.assertEqual(credit_line.account_id, self.liability)
        self.assertEqual(credit_line.balance, 120.0)
        self.assertFalse(
            self.env["account.move"].search(
                [("referral_credit_line_id", "=", credit_line.id)]
            )
        )
        self.assertEqual(self._liability(), 0.0)
        self._assert_reconciled()

    def test_order_credit_owed_until_invoiced(self):
        self.program.credit_tax_mode = "discount"
        self._wallet()._credit(120.0, name="Reward")
        order = self._create_order(self.sponsor)
        order.order_line.write({"product_id": self.goods.id, "price_unit": 1000.0})
        order._apply_referral_credit()
        order.action_confirm()
        row = self._assert_reconciled()
        self.assertEqual(row.wallet_balance, 0.0)
        self.assertEqual(row.order_credit_amount, 120.0)
        self.assertEqual(row.liability_amount, 120.0)
        invoice = order._create_invoices()
        invoice.action_post()
        row = self._assert_reconciled()
        self.assertEqual(row.order_credit_amount, 0.0)
        self.assertEqual(self._liability(), 0.0)

    def test_invoice_address_of_another_customer_books_the_sponsor(self):
        self.program.credit_tax_mode = "payment"
        other = self._create_customer("Other Billing Co")
        billing = self.env["res.partner"].create(
            {"name": "Billing", "parent_id": other.id, "type": "invoice"}
        )
        self._wallet()._credit(50.0, name="Reward")
        order = self._create_order(self.sponsor, partner_invoice_id=billing.id)
        order.order_line.write({"product_id": self.goods.id, "price_unit": 100.0})
        order._apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        credit_line = invoice.invoice_line_ids.filtered("referral_credit_wallet_id")
        self.assertEqual(credit_line.partner_id, self.sponsor)
        self._assert_reconciled()
        self._assert_reconciled(partner=other)

    def test_hand_made_entry_shows_as_a_difference(self):
        self._wallet()._credit(100.0, name="Reward")
        self._assert_reconciled()
        entry = self.env["account.move"].create(
            {
                "move_type": "entry",
                "journal_id": self.journal.id,
                "line_ids": [
                    Command.create(
                        {
                            "account_id": self.liability.id,
                            "partner_id": self.sponsor.id,
                            "debit": 15.0,
                        }
                    ),
                    Command.create({"account_id": self.expense.id, "credit": 15.0}),
                ],
            }
        )
        entry.action_post()
        row = self._reconciliation()
        self.assertEqual(row.difference, -15.0)
        self.assertEqual(row.liability_amount, 85.0)
        self.assertEqual(row.wallet_balance, 100.0)

    def test_accounting_off_books_nothing(self):
        self.program.accounting_enabled = False
        transaction = self._wallet()._credit(40.0, name="Reward")
        self.assertFalse(transaction.account_move_id)
        invoice = self._invoice(100.0)
        self.program.credit_tax_mode = "payment"
        invoice._apply_referral_credit(self._wallet(), 40.0)
        invoice.action_post()
        credit_line = invoice.invoice_line_ids.filtered("referral_credit_wallet_id")
        self.assertNotEqual(credit_line.account_id, self.liability)
        self.assertFalse(self._reconciliation())

    def test_reconciliation_access(self):
        self._wallet()._credit(100.0, name="Reward")
        self.env.flush_all()
        Report = self.env["referral.credit.reconciliation"]
        self.assertTrue(Report.with_user(self.accountant).search([]))
        with self.assertRaises(AccessError):
            Report.with_user(self.salesman).search([])


@tagged("post_install", "-at_install")
class TestWalletBooksMultiCompany(BooksCommon):
    def test_entries_in_each_company_currency_and_journal(self):
        foreign = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search(
                [("id", "!=", self.currency.id), ("name", "in", ("EUR", "USD"))],
                limit=1,
            )
        )
        foreign.active = True
        company = self.env["res.company"].create({"name": "Books Foreign Co"})
        self.env["account.chart.template"].try_loading(
            "generic_coa", company, install_demo=False
        )
        company.currency_id = foreign
        program = self.env["referral.program"]._get_company_program(company)
        self.assertTrue(program.accounting_enabled)
        self.assertNotEqual(program.credit_journal_id, self.journal)
        wallet = self.Wallet._get_or_create(self.sponsor, company)
        transaction = wallet._credit(70.0, name="Reward abroad")
        entry = transaction.account_move_id
        self.assertEqual(entry.company_id, company)
        self.assertEqual(entry.journal_id, program.credit_journal_id)
        self.assertEqual(entry.currency_id, foreign)
        self.assertEqual(entry.line_ids.account_id.company_ids, company)
        self._assert_reconciled(company=company)
        row = self._reconciliation(company=company)
        self.assertEqual(row.currency_id, foreign)
        self.assertEqual(row.liability_amount, 70.0)
        # Another company's reader does not see it.
        self.assertFalse(
            self.env["referral.credit.reconciliation"]
            .with_user(self.accountant)
            .search([("company_id", "=", company.id)])
        )
