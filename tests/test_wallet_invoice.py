# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletInvoice(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tax_10 = cls.env["account.tax"].create(
            {"name": "Tax 10", "amount": 10.0, "type_tax_use": "sale"}
        )
        cls.tax_20 = cls.env["account.tax"].create(
            {"name": "Tax 20", "amount": 20.0, "type_tax_use": "sale"}
        )
        cls.licence = cls.env["product.product"].create(
            {
                "name": "Licence",
                "type": "service",
                "list_price": 1000.0,
                "invoice_policy": "order",
                "taxes_id": [Command.set(cls.tax_10.ids)],
            }
        )
        cls.training = cls.env["product.product"].create(
            {
                "name": "Training",
                "type": "service",
                "list_price": 500.0,
                "invoice_policy": "order",
                "taxes_id": [Command.set(cls.tax_20.ids)],
            }
        )
        cls.program.write({"redeem_scope": "any", "credit_tax_mode": "discount"})

    def _invoice(self, partner=None, products=None):
        products = products or (self.licence | self.training)
        return self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": (partner or self.sponsor).id,
                "invoice_date": fields.Date.context_today(self.Transaction),
                "invoice_line_ids": [
                    Command.create({"product_id": product.id}) for product in products
                ],
            }
        )

    def _fund(self, amount, **values):
        return self._wallet()._credit(amount, name="Test credit", **values)

    def _apply(self, invoice, amount=None, user=None):
        action = invoice.with_user(
            user or self.env.user
        ).action_open_referral_credit_wizard()
        form = Form(
            self.env[action["res_model"]]
            .with_user(user or self.env.user)
            .with_context(**action["context"])
        )
        if amount is not None:
            form.amount = amount
        wizard = form.save()
        wizard.action_apply()
        return wizard

    def _credit_lines(self, invoice):
        return invoice.invoice_line_ids.filtered("referral_credit_wallet_id")

    def _debits(self, invoice):
        return self.Transaction.search(
            [("invoice_id", "=", invoice.id), ("transaction_type", "=", "debit")]
        )

    def test_wizard_defaults_to_balance_or_amount_due(self):
        self._fund(300.0)
        invoice = self._invoice()
        self.assertEqual(invoice.referral_credit_available, 300.0)
        action = invoice.action_open_referral_credit_wizard()
        wizard = Form(self.env[action["res_model"]].with_context(**action["context"]))
        self.assertEqual(wizard.amount, 300.0)
        small = self._invoice(products=self.licence)  # 1,100 due
        self._fund(2000.0)
        action = small.action_open_referral_credit_wizard()
        wizard = Form(self.env[action["res_model"]].with_context(**action["context"]))
        self.assertEqual(wizard.amount, 1100.0)

    def test_apply_split_over_taxes(self):
        self._fund(340.0)
        invoice = self._invoice()
        self.assertEqual(invoice.amount_total, 1700.0)
        self._apply(invoice)
        lines = self._credit_lines(invoice)
        # 340 is 20% of the 1,700 due: 20% of each tax group's base.
        self.assertRecordValues(
            lines.sorted(lambda line: line.tax_ids.amount),
            [
                {
                    "tax_ids": self.tax_10.ids,
                    "price_unit": -200.0,
                    "price_total": -220.0,
                },
                {
                    "tax_ids": self.tax_20.ids,
                    "price_unit": -100.0,
                    "price_total": -120.0,
                },
            ],
        )
        self.assertEqual(lines.product_id, self.program.credit_product_id)
        self.assertRecordValues(
            invoice,
            [
                {
                    "amount_untaxed": 1200.0,
                    "amount_tax": 160.0,
                    "amount_total": 1360.0,
                    "referral_credit_amount": 340.0,
                }
            ],
        )

    def test_apply_split_lowers_total_by_exact_amount_despite_rounding(self):
        self._fund(2000.0)
        for amount in (100.0, 999.99, 0.07):
            invoice = self._invoice()
            self._apply(invoice, amount=amount)
            self.assertEqual(invoice.amount_total, 1700.0 - amount)
            self.assertEqual(invoice.referral_credit_amount, amount)
        # Posted, the last one spends exactly what it took off the invoice.
        invoice.action_post()
        self.assertAlmostEqual(
            sum(self._debits(invoice).mapped("amount")), 0.07, places=2
        )

    def test_apply_as_payment(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice)
        line = self._credit_lines(invoice)
        self.assertRecordValues(line, [{"price_unit": -100.0, "price_total": -100.0}])
        self.assertFalse(line.tax_ids)
        self.assertEqual(invoice.amount_total, 1600.0)

    def test_amount_beyond_balance_or_due_refused(self):
        self._fund(100.0)
        invoice = self._invoice(products=self.licence)
        with self.assertRefused(UserError, "apply at most"):
            self._apply(invoice, amount=100.01)
        with self.assertRefused(UserError, "positive amount"):
            self._apply(invoice, amount=0.0)
        self._fund(5000.0)
        with self.assertRefused(UserError, "cannot exceed the amount due"):
            self._apply(invoice, amount=1100.01)
        self.assertFalse(self._credit_lines(invoice))

    def test_apply_twice_does_not_stack(self):
        self.program.credit_tax_mode = "payment"
        self._fund(300.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        self._apply(invoice, amount=250.0)
        self.assertEqual(self._credit_lines(invoice).price_unit, -250.0)
        self.assertEqual(invoice.amount_total, 1450.0)
        # The credit applied is replaced: it neither lowers the amount due
        # nor the default of the next application.
        wizard = self._apply(invoice)
        self.assertRecordValues(
            wizard, [{"amount_due": 1700.0, "balance": 300.0, "amount": 300.0}]
        )
        self.assertEqual(self._credit_lines(invoice).price_unit, -300.0)
        self.assertFalse(self._debits(invoice))

    def test_debit_posted_with_invoice_then_released(self):
        self.program.credit_tax_mode = "payment"
        soon = self._fund(60.0, expiry_date="2098-01-01")
        late = self._fund(100.0, expiry_date="2099-01-01")
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        self.assertFalse(self._debits(invoice))
        invoice.action_post()
        self.assertRecordValues(
            self._debits(invoice), [{"amount": 100.0, "state": "posted"}]
        )
        self.assertEqual((soon | late).mapped("remaining_amount"), [0.0, 60.0])
        self.assertEqual(self._wallet().balance, 60.0)
        invoice.button_draft()
        self.assertEqual(self._wallet().balance, 160.0)
        release = self.Transaction.search(
            [("invoice_id", "=", invoice.id), ("transaction_type", "=", "reversal")]
        )
        # The release restores the very credits the debit consumed, each
        # with its own expiry (the reversal itself holds nothing).
        self.assertRecordValues(
            release,
            [{"amount": 100.0, "remaining_amount": 0.0, "state": "posted"}],
        )
        self.assertEqual((soon | late).mapped("remaining_amount"), [60.0, 100.0])
        # Posted again: debited once more, once.
        invoice.action_post()
        self.assertEqual(self._wallet().balance, 60.0)
        self.assertEqual(len(self._debits(invoice)), 2)
        invoice.button_draft()
        invoice.button_cancel()
        self.assertEqual(invoice.state, "cancel")
        self.assertEqual(self._wallet().balance, 160.0)

    def test_cancelled_posted_invoice_releases_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=80.0)
        invoice.action_post()
        self.assertEqual(self._wallet().balance, 20.0)
        invoice.button_cancel()
        self.assertEqual(invoice.state, "cancel")
        self.assertEqual(self._wallet().balance, 100.0)
        release = self.Transaction.search(
            [("invoice_id", "=", invoice.id), ("transaction_type", "=", "reversal")]
        )
        self.assertRecordValues(
            release,
            [{"amount": 80.0, "reversed_transaction_id": self._debits(invoice).id}],
        )

    def test_draft_invoice_cancelled_spends_nothing(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=80.0)
        invoice.button_cancel()
        self.assertFalse(self.Transaction.search([("invoice_id", "=", invoice.id)]))
        self.assertEqual(self._wallet().balance, 100.0)

    def test_invoice_in_foreign_currency_converts_credit(self):
        self.program.credit_tax_mode = "payment"
        foreign = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search([("id", "!=", self.currency.id)], limit=1)
        )
        foreign.active = True
        self.env["res.currency.rate"].create(
            {
                "currency_id": foreign.id,
                "company_id": self.company.id,
                "name": fields.Date.context_today(self.Transaction),
                "rate": 2.0 * self.currency.rate,
            }
        )
        self._fund(100.0)
        invoice = self._invoice()
        invoice.currency_id = foreign
        # 100 of company currency are worth 200 of the invoice's.
        self.assertEqual(invoice.referral_credit_available, 200.0)
        wizard = self._apply(invoice, amount=150.0)
        self.assertEqual(wizard.balance, 200.0)
        self.assertEqual(invoice.referral_credit_amount, 150.0)
        invoice.action_post()
        self.assertEqual(self._debits(invoice).amount, 75.0)
        self.assertEqual(self._wallet().balance, 25.0)

    def test_posting_refused_when_credit_spent_meanwhile(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        self._wallet()._debit(30.0, name="Spent elsewhere")
        with self.assertRefused(UserError, "less than the"):
            invoice.action_post()
        self.assertEqual(invoice.state, "draft")

    def test_invoice_of_order_credit_not_debited_twice(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._create_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual(self._wallet().balance, 0.0)
        invoice = order._create_invoices()
        self.assertEqual(
            self._credit_lines(invoice).referral_credit_wallet_id, self._wallet()
        )
        invoice.action_post()
        # The spending moves from the order to its invoice: not twice.
        self.assertEqual(self._held(invoice.invoice_line_ids), 100.0)
        self.assertEqual(self._held(order.order_line), 0.0)
        self.assertEqual(self._wallet().balance, 0.0)
        # Resetting it does not give back what the order spends.
        invoice.button_draft()
        self.assertEqual(self._held(order.order_line), 100.0)
        self.assertEqual(self._wallet().balance, 0.0)

    def test_cancelled_order_keeps_credit_its_posted_invoice_spent(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._create_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        # The posted invoice still grants the credit: cancelling its order
        # does not give it back a second time.
        order._action_cancel()
        self.assertEqual(order.state, "cancel")
        self.assertEqual(self._wallet().balance, 0.0)
        # Its credit note does.
        self._refund(invoice)
        self.assertEqual(self._wallet().balance, 100.0)

    def test_cancelled_order_keeps_credit_its_partly_refunded_invoice_spent(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._create_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        # 40% of the invoice refunded, goods and credit alike (a credit note
        # never pays back in money what the credit paid).
        refund = self._draft_refund(invoice, share=0.4)
        refund.action_post()
        self.assertEqual(self._wallet().balance, 40.0)
        # The invoice still grants 60 of the credit: the order gives no more
        # back; the rest comes back with the invoice's next credit note.
        order._action_cancel()
        self.assertEqual(self._wallet().balance, 40.0)
        refund = self._draft_refund(invoice, share=0.6)
        refund.action_post()
        self.assertEqual(self._wallet().balance, 100.0)

    def test_cancelled_order_with_draft_invoice_releases_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._create_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        order._action_cancel()
        self.assertEqual(invoice.state, "cancel")
        self.assertEqual(self._wallet().balance, 100.0)

    def test_invoice_of_order_with_credit_line_by_hand_not_debited_twice(self):
        self._fund(150.0)
        order = self._create_order(self.sponsor)
        order.order_line.tax_id = self.tax_10
        credit_line = self.env["sale.order.line"].create(
            {
                "order_id": order.id,
                "product_id": self.program.credit_product_id.id,
                "product_uom_qty": 1.0,
                "price_unit": -110.0,
                "tax_id": [Command.clear()],
                "referral_credit_wallet_id": self._wallet().id,
            }
        )
        order.action_confirm()
        self.assertEqual(self._held(credit_line), 110.0)
        self.assertEqual(self._wallet().balance, 40.0)
        invoice = order._create_invoices()
        line = self._credit_lines(invoice)
        self.assertRecordValues(
            line,
            [
                {
                    "referral_credit_wallet_id": self._wallet().id,
                    "sale_line_ids": credit_line.ids,
                    "price_total": -110.0,
                }
            ],
        )
        self.assertEqual(invoice.referral_credit_amount, 110.0)
        invoice.action_post()
        self.assertEqual(self._held(credit_line), 0.0)
        self.assertEqual(self._held(line), 110.0)
        self.assertEqual(self._wallet().balance, 40.0)

    def _refund(self, invoice, lines=None):
        wizard = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "reason": "test"})
        )
        refund = self.env["account.move"].browse(wizard.refund_moves()["res_id"])
        if lines is not None:
            refund.invoice_line_ids.filtered(
                lambda line: line.product_id not in lines
            ).unlink()
        refund.action_post()
        return refund

    def test_credit_note_restores_consumed_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        invoice.action_post()
        self.assertEqual(self._wallet().balance, 0.0)
        refund = self._refund(invoice)
        restored = self.Transaction.search(
            [("invoice_id", "=", refund.id), ("transaction_type", "=", "reversal")]
        )
        self.assertEqual(restored.amount, 100.0)
        self.assertEqual(self._wallet().balance, 100.0)

    def test_credit_note_of_order_invoice_restores_order_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._create_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        self._refund(invoice)
        self.assertEqual(self._wallet().balance, 100.0)
        # Cancelling the order afterwards gives nothing more back.
        order._action_cancel()
        self.assertEqual(self._wallet().balance, 100.0)

    def test_partial_credit_note_restores_only_refunded_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        invoice.action_post()
        refund = self._refund(invoice, lines=self.licence)  # credit line dropped
        self.assertFalse(self._credit_lines(refund))
        self.assertEqual(self._wallet().balance, 0.0)

    def test_partial_credit_notes_restore_refunded_part_never_more(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        invoice.action_post()
        refunds = self.env["account.move"]
        # Three credit notes each refunding 40 of the credit (and 30% of the
        # goods: in money, less than the invoice charged): 40, 40, then the
        # 20 left (the invoice consumed 100).
        for expected_balance in (40.0, 80.0, 100.0):
            refund = self._draft_refund(invoice, share=0.3)
            self._credit_lines(refund).price_unit = -40.0
            refund.action_post()
            refunds |= refund
            self.assertEqual(self._wallet().balance, expected_balance)
        restored = self.Transaction.search(
            [("invoice_id", "in", refunds.ids), ("transaction_type", "=", "reversal")]
        )
        self.assertEqual(restored.sorted("id").mapped("amount"), [40.0, 40.0, 20.0])
        self.assertEqual(restored.reversed_transaction_id, self._debits(invoice))

    def test_credit_note_reset_takes_restored_credit_back(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        invoice.action_post()
        refund = self._refund(invoice)
        self.assertEqual(self._wallet().balance, 100.0)
        refund.button_draft()
        self.assertEqual(self._wallet().balance, 0.0)
        # Posted again refunding less (goods and credit): it gives back that
        # much of the credit.
        self._scale_lines(refund, 0.3)
        refund.action_post()
        self.assertEqual(self._wallet().balance, 30.0)
        refund.button_cancel()
        self.assertEqual(refund.state, "cancel")
        self.assertEqual(self._wallet().balance, 0.0)
        self.assertEqual(self._debits(invoice).amount, 100.0)

    def test_credit_note_reset_refused_when_restored_credit_spent(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=100.0)
        invoice.action_post()
        refund = self._refund(invoice)
        self._wallet()._debit(60.0, name="Spent elsewhere")
        with self.assertRefused(UserError, "less than the .*100.00.* RINV"):
            refund.button_draft()
        self.assertEqual(refund.state, "posted")
        self.assertEqual(self._wallet().balance, 40.0)

    def _draft_refund(self, invoice, share=1.0):
        """A draft credit note of ``invoice``, refunding ``share`` of each
        of its lines."""
        wizard = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "reason": "test"})
        )
        refund = self.env["account.move"].browse(wizard.refund_moves()["res_id"])
        if share != 1.0:
            self._scale_lines(refund, share)
        return refund

    def _scale_lines(self, move, share):
        move.write(
            {
                "invoice_line_ids": [
                    Command.update(line.id, {"price_unit": line.price_unit * share})
                    for line in move.invoice_line_ids
                ]
            }
        )

    def test_credit_note_paying_back_credit_as_money_refused(self):
        """A credit note refunding the goods of an invoice paid with credit,
        without its credit lines, would pay the credit back in money."""
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice(products=self.licence)
        self._apply(invoice, amount=100.0)
        invoice.action_post()
        self.assertEqual(invoice.amount_total, 1000.0)
        refund = self._draft_refund(invoice)
        self._credit_lines(refund).unlink()
        with self.assertRefused(UserError, "would become a refund"):
            refund.action_post()
        self.assertEqual(refund.state, "draft")
        self.assertEqual(self._wallet().balance, 0.0)
        # Refunding part of the goods only, the credit stays spent.
        self._scale_lines(refund, 0.5)
        refund.action_post()
        self.assertEqual(refund.amount_total, 550.0)
        self.assertEqual(self._wallet().balance, 0.0)

    def _pay(self, invoice, **values):
        self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids
        ).create(values)._create_payments()

    def test_invoice_paid_trigger(self):
        self.program.reward_trigger = "invoice_paid"
        referral, order = self._reward_referral("Paying Ltd", price=1000.0)
        self.assertEqual(referral.state, "won")
        invoice = order._create_invoices()
        invoice.action_post()
        self.assertFalse(referral.transaction_ids)
        self._pay(invoice, amount=400.0)
        self.assertEqual(invoice.payment_state, "partial")
        self.assertFalse(referral.transaction_ids)
        self._pay(invoice)
        self.assertEqual(invoice.payment_state, "paid")
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(self._wallet().balance, 100.0)
        # The hook runs again (another payment state change): rewarded once.
        invoice._invoice_paid_hook()
        self.assertEqual(len(referral.transaction_ids), 1)

    def test_full_refund_of_first_invoice_revokes_reward(self):
        referral, order = self._reward_referral("Refunded Ltd", price=1000.0)
        self.assertEqual(self._wallet().balance, 100.0)
        invoice = order._create_invoices()
        invoice.action_post()
        self._refund(invoice)
        self.assertEqual(self._wallet().balance, 0.0)
        self.assertEqual(referral.state, "in_progress")

    def test_two_partial_refunds_of_first_invoice_revoke_reward(self):
        referral, order = self._reward_referral("Halves Ltd", price=1000.0)
        invoice = order._create_invoices()
        invoice.action_post()
        first = self._draft_refund(invoice)
        first.invoice_line_ids.price_unit = 500.0
        first.action_post()
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(self._wallet().balance, 100.0)
        second = self._draft_refund(invoice)
        second.invoice_line_ids.price_unit = 500.0
        second.action_post()
        self.assertEqual(referral.state, "in_progress")
        self.assertEqual(self._wallet().balance, 0.0)

    def test_billing_user_applies_salesperson_cannot(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        invoice = self._invoice()
        self._apply(invoice, amount=50.0, user=self.accountant)
        invoice.with_user(self.accountant).action_post()
        self.assertEqual(self._wallet().balance, 50.0)
        other = self._invoice()
        with self.assertRefused(AccessError, "not allowed"):
            self._apply(other, amount=10.0, user=self.salesman)
        wizard = (
            self.env["referral.credit.apply.wizard"]
            .with_context(default_move_id=other.id)
            .create({"amount": 10.0})
        )
        with self.assertRefused(AccessError, "not allowed"):
            wizard.with_user(self.salesman).action_apply()
        self.assertFalse(self._credit_lines(other))
        self.assertEqual(self._wallet().balance, 50.0)

    def test_wizard_only_on_draft_customer_invoices(self):
        self._fund(100.0)
        invoice = self._invoice()
        invoice.action_post()
        with self.assertRefused(UserError, "draft customer invoices"):
            invoice.action_open_referral_credit_wizard()

    def test_apply_query_count(self):
        self._fund(100.0)
        invoice = self._invoice()
        action = invoice.action_open_referral_credit_wizard()
        wizard = (
            self.env[action["res_model"]]
            .with_context(**action["context"])
            .create({"amount": 50.0})
        )
        self.env.flush_all()
        self.env.invalidate_all()
        # One more than before the binding followed the orders behind an
        # invoice: reading which orders the invoice comes from.
        with self.assertQueryCount(__system__=71):
            wizard.action_apply()
            self.env.flush_all()
