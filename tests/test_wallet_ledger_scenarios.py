# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""One regression test per way the wallets used to create or lose credit on
ordinary accounting flows (tax-free products, credit as a payment)."""

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, new_test_user, tagged

from .common import WalletCommon

# Apply credit on a quotation and confirm it: 63 queries measured under make
# test (a wallet of 1 or 500 transactions; 86 before the follow-ups' stop
# conditions and cron trigger left the confirmation for the lifecycle
# queue's job), two of margin for the caches a run leaves.
APPLY_CONFIRM_QUERIES = 65


@tagged("post_install", "-at_install")
class TestWalletLedgerScenarios(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.program.write({"redeem_scope": "any", "credit_tax_mode": "payment"})
        cls.item = cls.env["product.product"].create(
            {
                "name": "Consulting",
                "type": "service",
                "list_price": 100.0,
                "invoice_policy": "order",
                "taxes_id": [Command.clear()],
            }
        )
        cls.customer_y = cls._create_customer("Customer Y", user_id=cls.salesman.id)

    # ------------------------------------------------------------------ helpers

    def _fund(self, amount, partner=None, **values):
        wallet = self._wallet(partner or self.sponsor)
        return wallet._credit(amount, name="Earned", **values)

    def _balance(self, partner=None):
        wallet = self._wallet(partner or self.sponsor)
        wallet.invalidate_recordset()
        return wallet.balance

    def _order(self, partner=None, price=100.0):
        order = self.env["sale.order"].create(
            {
                "partner_id": (partner or self.sponsor).id,
                "order_line": [
                    Command.create({"product_id": self.item.id, "price_unit": price})
                ],
            }
        )
        return order

    def _invoiced_order_with_credit(self):
        """An order of 100 spending the sponsor's credit, confirmed, invoiced
        and its invoice posted."""
        order = self._order()
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        return order, invoice

    def _direct_invoice(self, price, credit, partner=None):
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": (partner or self.sponsor).id,
                "invoice_date": fields.Date.context_today(self.Wallet),
                "invoice_line_ids": [
                    Command.create({"product_id": self.item.id, "price_unit": price})
                ],
            }
        )
        action = invoice.action_open_referral_credit_wizard()
        form = Form(self.env[action["res_model"]].with_context(**action["context"]))
        form.amount = credit
        form.save().action_apply()
        return invoice

    def _reversal(self, invoice):
        return (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "reason": "test"})
        )

    def _refund(self, invoice):
        wizard = self._reversal(invoice)
        refund = self.env["account.move"].browse(wizard.refund_moves()["res_id"])
        refund.action_post()
        return refund

    def _credit_lines(self, record):
        lines = (
            record.order_line
            if record._name == "sale.order"
            else record.invoice_line_ids
        )
        return lines.filtered("referral_credit_wallet_id")

    # ----------------------------------------------------- 1. lost credit

    def test_refund_reset_and_cancel_give_all_credit_back(self):
        self._fund(100.0)
        invoice = self._direct_invoice(80.0, 80.0)
        invoice.action_post()
        self.assertEqual(self._balance(), 20.0)
        refund = self._refund(invoice)
        self.assertEqual(self._balance(), 100.0)
        refund.button_draft()
        self.assertEqual(self._balance(), 20.0)
        invoice.button_draft()
        invoice.button_cancel()
        # Every document is draft or cancelled: nothing is spent.
        self.assertEqual((invoice | refund).mapped("state"), ["cancel", "draft"])
        self.assertEqual(self._balance(), 100.0)

    def test_cancelled_order_then_invoice_reset_and_cancelled_give_credit_back(self):
        self._fund(100.0)
        order, invoice = self._invoiced_order_with_credit()
        order._action_cancel()
        # The posted invoice still holds the credit.
        self.assertEqual(self._balance(), 0.0)
        invoice.button_draft()
        invoice.button_cancel()
        self.assertEqual(self._balance(), 100.0)

    def test_refund_reset_cancel_then_order_cancelled_gives_credit_back(self):
        self._fund(100.0)
        order, invoice = self._invoiced_order_with_credit()
        refund = self._refund(invoice)
        refund.button_draft()
        refund.button_cancel()
        invoice.button_draft()
        invoice.button_cancel()
        self.assertEqual(self._balance(), 0.0, "the confirmed order spends it")
        order._action_cancel()
        self.assertEqual(self._balance(), 100.0)

    def test_credit_given_back_by_a_credit_note_keeps_its_expiry(self):
        credit = self._fund(100.0, expiry_date="2098-06-30")
        invoice = self._direct_invoice(80.0, 80.0)
        invoice.action_post()
        self.assertEqual(credit.remaining_amount, 20.0)
        refund = self._refund(invoice)
        restored = self.Transaction.search(
            [("invoice_id", "=", refund.id), ("transaction_type", "=", "reversal")]
        )
        # The credit itself is whole again: its expiry is kept as it was.
        self.assertRecordValues(
            restored,
            [
                {
                    "amount": 80.0,
                    "remaining_amount": 0.0,
                    "expiry_date": fields.Date.to_date("2098-06-30"),
                }
            ],
        )
        self.assertEqual(credit.remaining_amount, 100.0)
        self.assertEqual(
            restored.reversed_transaction_id.invoice_id, invoice, "its origin debit"
        )

    # ------------------------------------- 2. credit spent on someone else

    def test_customer_change_removes_credit_lines_of_the_former_customer(self):
        self._fund(100.0)
        order = self._order()
        order.action_apply_referral_credit()
        self.assertTrue(self._credit_lines(order))
        with Form(order) as form:
            form.partner_id = self.customer_y
        self.assertFalse(self._credit_lines(order))
        self.assertTrue(
            order.message_ids.filtered(
                lambda m: "former customer were removed" in (m.body or "")
            )
        )
        order.action_confirm()
        self.assertEqual(self._balance(), 100.0)
        self.assertEqual(self._balance(self.customer_y), 0.0)

    def test_customer_change_refused_on_confirmed_order_with_credit(self):
        self._fund(100.0)
        order = self._order()
        order.action_apply_referral_credit()
        order.action_confirm()
        with self.assertRefused(UserError, "can no longer change"):
            order.write({"partner_id": self.customer_y.id})
        self.assertEqual(order.partner_id, self.sponsor)
        self.assertEqual(self._balance(), 0.0)

    def test_customer_change_on_draft_invoice_removes_credit_lines(self):
        self._fund(100.0)
        invoice = self._direct_invoice(80.0, 80.0)
        invoice.write({"partner_id": self.customer_y.id})
        self.assertFalse(self._credit_lines(invoice))
        invoice.action_post()
        self.assertEqual(self._balance(), 100.0)

    def test_credit_line_cannot_point_at_another_wallet(self):
        self._fund(100.0)
        other_wallet = self._wallet(self.customer_y)
        foreign_wallet = self._wallet(self.sponsor, self.other_company)
        order = self._order()
        order.action_apply_referral_credit()
        line = self._credit_lines(order)
        for wallet in (other_wallet, foreign_wallet):
            with self.assertRefused(ValidationError, "can only spend the referral"):
                line.write({"referral_credit_wallet_id": wallet.id})
        invoice = self._direct_invoice(80.0, 50.0)
        with self.assertRefused(ValidationError, "can only spend the referral"):
            self._credit_lines(invoice).write(
                {"referral_credit_wallet_id": other_wallet.id}
            )
        self.assertEqual(line.referral_credit_wallet_id, self._wallet())

    # --------------------------------------------- 3. free credit by copy

    def test_duplicated_order_and_invoice_carry_no_credit(self):
        self._fund(100.0)
        order = self._order(price=200.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        copy = order.copy()
        self.assertEqual(len(copy.order_line), 1)
        self.assertFalse(copy.order_line.filtered(lambda ln: ln.price_unit < 0))
        copy.action_confirm()
        self.assertEqual(copy.amount_total, 200.0)
        self.assertEqual(self._balance(), 0.0)
        self._fund(80.0)
        invoice = self._direct_invoice(80.0, 80.0)
        invoice.action_post()
        copy_invoice = invoice.copy()
        self.assertEqual(copy_invoice.invoice_line_ids.product_id, self.item)
        copy_invoice.action_post()
        self.assertEqual(copy_invoice.amount_total, 80.0)
        self.assertEqual(self._balance(), 0.0)

    # ------------------------------------ 4. reverse and create invoice

    def test_reverse_and_create_invoice_spends_the_credit_once(self):
        self._fund(150.0)
        order, invoice = self._invoiced_order_with_credit()
        self.assertEqual(self._balance(), 50.0)
        wizard = self._reversal(invoice)
        wizard.modify_moves()
        new_invoice = wizard.new_move_ids
        self.assertEqual(new_invoice.state, "draft")
        self.assertEqual(self._credit_lines(new_invoice).price_total, -100.0)
        # The credit note gave the invoice's credit back; the new invoice
        # spends it again once posted.
        self.assertEqual(self._balance(), 150.0)
        new_invoice.action_post()
        self.assertEqual(self._balance(), 50.0)

    def test_reinvoicing_after_full_credit_note_spends_again(self):
        self._fund(150.0)
        order, invoice = self._invoiced_order_with_credit()
        self._refund(invoice)
        self.assertEqual(self._balance(), 150.0)
        again = order._create_invoices()
        self.assertEqual(self._credit_lines(again).price_total, -100.0)
        again.action_post()
        self.assertEqual(self._balance(), 50.0)

    # --------------------------------- 5. draft invoice line edited by hand

    def test_credit_line_edited_on_draft_invoice_spends_what_it_shows(self):
        self._fund(100.0)
        invoice = self._direct_invoice(600.0, 100.0)
        self._credit_lines(invoice).price_unit = -500.0
        with self.assertRefused(UserError, "less than the .*500.00"):
            invoice.action_post()
        self.assertEqual(invoice.state, "draft")
        self.assertEqual(self._balance(), 100.0)
        self._fund(400.0)
        invoice.action_post()
        self.assertEqual(self._balance(), 0.0)

    # -------------------------------------------- 6. welcome discount once

    def test_welcome_discount_kept_by_the_first_confirmed_order_only(self):
        self.program.referee_discount_percent = 10.0
        referral = self._refer(referee_company_name="Welcome Ltd")
        first = self._order(referral.referee_id)
        second = self._order(referral.referee_id)
        for order in first | second:
            order.action_apply_referral_welcome_discount()
        self.assertEqual((first | second).mapped("amount_total"), [90.0, 90.0])
        second.action_confirm()
        self.assertEqual(second.amount_total, 90.0)
        first.action_confirm()
        self.assertEqual(first.amount_total, 100.0)
        self.assertFalse(first.order_line.filtered("is_referral_welcome_discount"))
        self.assertTrue(
            first.message_ids.filtered(
                lambda m: "welcome discount was removed" in (m.body or "")
            )
        )

    # ------------------------------------------------------- 7. rewards

    def test_revoked_reward_is_granted_again_without_approval(self):
        referral, order = self._reward_referral("Again Ltd", price=1000.0)
        self.assertEqual(referral.state, "rewarded")
        order._action_cancel()
        self.assertEqual(referral.state, "in_progress")
        self.assertEqual(self._balance(), 0.0)
        self._confirm_order(referral.referee_id)
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(referral.reward_amount, 120.0)
        self.assertEqual(self._balance(), 120.0)

    def test_revoked_reward_is_granted_again_with_approval(self):
        self.program.approval_required = True
        referral, order = self._reward_referral("Again Ltd", price=1000.0)
        self.assertEqual(referral.reward_amount, 100.0)
        order._action_cancel()
        self._confirm_order(referral.referee_id)
        self.assertEqual(referral.state, "won")
        self.assertEqual(referral.reward_amount, 120.0)

    def test_yearly_cap_counts_net_rewards(self):
        self.program.yearly_cap_amount = 150.0
        first, order = self._reward_referral("First Ltd", price=1000.0)
        order._action_cancel()
        second, _order = self._reward_referral("Second Ltd", price=1500.0)
        # The revoked 100 no longer counts: the whole 150 is earned.
        self.assertEqual(second.reward_amount, 150.0)
        self.assertEqual(first.reward_amount, 0.0)

    def test_partial_invoice_refunded_does_not_revoke_the_reward(self):
        referral = self._refer(referee_company_name="Partial Ltd")
        order = self.env["sale.order"].create(
            {
                "partner_id": referral.referee_id.id,
                "order_line": [
                    Command.create({"product_id": self.item.id, "price_unit": price})
                    for price in (600.0, 400.0)
                ],
            }
        )
        order.action_confirm()
        self._process_lifecycle_queue()
        self.assertEqual(referral.state, "rewarded")
        partial = order._create_invoices()
        partial.invoice_line_ids.filtered(lambda ln: ln.price_unit == 400.0).unlink()
        partial.action_post()
        self._refund(partial)
        self.assertEqual(referral.state, "rewarded")
        # The whole order invoiced, then refunded: the reward goes.
        whole = order._create_invoices()
        whole.action_post()
        self._refund(whole)
        self.assertEqual(referral.state, "in_progress")
        self.assertEqual(referral.reward_amount, 0.0)

    # ------------------------------------------------------- 9. rights

    def test_nobody_writes_the_ledger_or_moves_a_wallet(self):
        credit = self._fund(100.0)
        wallet = credit.wallet_id
        for user in (self.approver, self.accountant, self.salesman_all):
            with self.assertRefused(AccessError, "not allowed"):
                self.Transaction.with_user(user).create(
                    {"wallet_id": wallet.id, "transaction_type": "credit", "amount": 5}
                )
            with self.assertRefused(AccessError, "not allowed"):
                credit.with_user(user).unlink()
            with self.assertRefused(AccessError, "not allowed"):
                wallet.with_user(user).write({"partner_id": self.customer_y.id})
        with self.assertRefused(UserError, "never change"):
            wallet.write({"company_id": self.other_company.id})
        self.assertEqual(wallet.partner_id, self.sponsor)

    def test_won_referral_fields_change_only_through_actions(self):
        referral, _order = self._reward_referral("Locked Ltd")
        for vals in (
            {"state": "new"},
            {"sponsor_id": self.customer_y.id},
            {"first_order_id": False},
        ):
            with self.assertRefused(UserError, "are won"):
                referral.with_user(self.salesman).write(vals)
        self.assertEqual(referral.state, "rewarded")
        # Unchanged values and other fields stay writable.
        referral.with_user(self.salesman).write(
            {"state": "rewarded", "referee_phone": "+32 2 000 00 00"}
        )

    def test_own_documents_salesperson_reads_only_own_customers_wallets(self):
        other = new_test_user(
            self.env, login="ref_other_sales", groups="sales_team.group_sale_salesman"
        )
        foreign = self._create_customer("Foreign Corp", user_id=other.id)
        mine = self._wallet(self.sponsor)
        theirs = self._wallet(foreign)
        Wallet = self.Wallet.with_user(self.salesman)
        self.assertEqual(Wallet.search([("id", "in", (mine | theirs).ids)]), mine)
        with self.assertRefused(AccessError, "access"):
            theirs.with_user(self.salesman).read(["balance"])
        self.assertEqual(
            self.Wallet.with_user(self.salesman_all).search_count(
                [("id", "in", (mine | theirs).ids)]
            ),
            2,
        )

    # ------------------------------------------------------- 10. expiry

    def test_credit_past_its_date_is_never_spendable(self):
        yesterday = fields.Date.context_today(self.Wallet) - fields.date.resolution
        self._fund(100.0, expiry_date=yesterday)
        wallet = self._wallet()
        self.assertEqual(wallet.balance, 100.0, "the daily job did not run yet")
        self.assertEqual(wallet.spendable_balance, 0.0)
        order = self._order()
        with self.assertRefused(UserError, "no referral credit"):
            order.action_apply_referral_credit()
        # A credit line applied before the date passed spends nothing now.
        self.env["sale.order.line"].create(
            {
                "order_id": order.id,
                "product_id": self.program.credit_product_id.id,
                "price_unit": -50.0,
                "tax_id": [Command.clear()],
                "referral_credit_wallet_id": wallet.id,
            }
        )
        with self.assertRefused(UserError, "less than the"):
            order.action_confirm()
        self.assertEqual(order.state, "draft")
        order.action_fit_referral_credit()
        self.assertFalse(self._credit_lines(order))
        order.action_confirm()
        self.assertEqual(self._balance(), 100.0)
        self.env["referral.wallet.transaction"]._cron_expire_credits()
        self.assertEqual(self._balance(), 0.0)
        self.assertEqual(
            wallet.transaction_ids.filtered(
                lambda t: t.transaction_type == "expiry"
            ).amount,
            100.0,
        )

    # ----------------------------------------- way out of a spent quotation

    def test_fit_referral_credit_refits_lines_to_what_is_left(self):
        self._fund(100.0)
        order = self._order(price=300.0)
        order.action_apply_referral_credit()
        self.assertEqual(order.referral_credit_available, 0.0)
        self._wallet()._debit(70.0, name="Spent elsewhere")
        order.invalidate_recordset()
        self.assertEqual(order.referral_credit_uncovered, 70.0)
        with self.assertRefused(UserError, "Fit Referral Credit"):
            order.action_confirm()
        order.action_fit_referral_credit()
        self.assertEqual(order.referral_credit_amount, 30.0)
        self.assertEqual(order.referral_credit_uncovered, 0.0)
        order.action_confirm()
        self.assertEqual(self._balance(), 0.0)

    # ---------------------------------------------- queries flat in ledger

    def test_apply_and_confirm_queries_flat_with_ledger_size(self):
        # Two orders warm the caches; then a wallet of 1 and one of 500
        # transactions cost exactly the same queries.
        counts = []
        for index, size in enumerate((1, 1, 1, 500)):
            partner = self._create_customer(f"Ledger of {size}")
            wallet = self._wallet(partner)
            self.env["referral.wallet.transaction"].sudo().create(
                [
                    {
                        "wallet_id": wallet.id,
                        "transaction_type": "credit",
                        "amount": 1.0,
                        "remaining_amount": 1.0,
                        "name": "Small credit",
                    }
                    for _i in range(size)
                ]
            )
            order = self._order(partner, price=0.5)
            self.env.flush_all()
            self.env.invalidate_all()
            # The first runs warm the caches (the first counted one too).
            expected = APPLY_CONFIRM_QUERIES if index > 1 else 1000
            with self.assertQueryCount(__system__=expected):
                before = self.env.cr.sql_log_count
                order.action_apply_referral_credit()
                order.action_confirm()
                self.env.flush_all()
                counts.append(self.env.cr.sql_log_count - before)
            self.assertEqual(order.referral_credit_amount, 0.5)
        self.assertEqual(counts[2], counts[3], "flat with the ledger's size")
