# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Credit that cannot leak, tried as an accountant would (tax-free products,
credit as a payment): bounded by the goods it pays, spent from the wallet
its document is bound to, given back with its expiry, and rewards derived
from the referee's documents. Each of the first five tests is one example
of the issue that found the leak; the others try the same principle on the
neighbouring flows."""

from odoo import Command, fields
from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletBounds(WalletCommon):
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
        cls.today = fields.Date.context_today(cls.env["referral.wallet"])

    # ------------------------------------------------------------------ helpers

    def _fund(self, amount, partner=None, **values):
        return self._wallet(partner or self.sponsor)._credit(
            amount, name="Earned", **values
        )

    def _balance(self, partner=None):
        wallet = self._wallet(partner or self.sponsor)
        wallet.invalidate_recordset()
        return wallet.balance

    def _order(self, partner=None, price=100.0, quantity=1.0, **values):
        return self.env["sale.order"].create(
            {
                "partner_id": (partner or self.sponsor).id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": self.item.id,
                            "price_unit": price,
                            "product_uom_qty": quantity,
                        }
                    )
                ],
                **values,
            }
        )

    def _credit_lines(self, record):
        lines = (
            record.order_line
            if record._name == "sale.order"
            else record.invoice_line_ids
        )
        return lines.filtered("referral_credit_wallet_id")

    def _goods(self, order):
        return order.order_line - self._credit_lines(order)

    def _invoice_with_wizard(self, orders, **values):
        """Create Invoice on the orders, as the button does (regular invoice,
        down payments deducted)."""
        wizard = (
            self.env["sale.advance.payment.inv"]
            .with_context(active_model="sale.order", active_ids=orders.ids)
            .create({"advance_payment_method": "delivered", **values})
        )
        wizard.create_invoices()
        return orders.invoice_ids.filtered(lambda m: m.state == "draft")

    def _refund(self, invoice, post=True):
        wizard = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "reason": "test"})
        )
        refund = self.env["account.move"].browse(wizard.refund_moves()["res_id"])
        if post:
            refund.action_post()
        return refund

    def _messages(self, record, text):
        return record.message_ids.filtered(lambda m: text in (m.body or ""))

    def _foreign_currency(self, rate=2.0):
        foreign = (
            self.env["res.currency"]
            .with_context(active_test=False)
            .search(
                [("id", "!=", self.currency.id), ("name", "in", ("EUR", "USD"))],
                limit=1,
            )
        )
        foreign.active = True
        self.env["res.currency.rate"].create(
            {
                "currency_id": foreign.id,
                "company_id": self.company.id,
                "name": self.today,
                "rate": rate * self.currency.rate,
            }
        )
        return foreign

    # -------------------------------------------- the six examples

    def test_lowered_quantity_of_confirmed_order_gives_surplus_back(self):
        """Example 1: 2 x 100 paid with 200 of credit, confirmed, then one
        unit less: the credit shrinks to 100 and 100 goes back to the
        wallet; the invoice is no credit note owed to the customer."""
        self._fund(200.0)
        order = self._order(quantity=2.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual(self._balance(), 0.0)
        self._goods(order).product_uom_qty = 1.0
        self.assertEqual(order.amount_total, 0.0)
        self.assertEqual(self._credit_lines(order).price_total, -100.0)
        self.assertEqual(self._balance(), 100.0)
        self.assertTrue(self._messages(order, "referral credit was lowered"))
        invoice = self._invoice_with_wizard(order)
        self.assertRecordValues(
            invoice, [{"move_type": "out_invoice", "amount_total": 0.0}]
        )
        invoice.action_post()
        self.assertEqual(self._balance(), 100.0)
        self.assertFalse(
            order.invoice_ids.filtered(lambda m: m.move_type == "out_refund")
        )

    def test_lowered_price_of_quotation_never_makes_a_negative_total(self):
        """Example 2: 100 of credit on a quotation whose line then costs 40:
        the credit shrinks to 40 at once, confirmation spends 40."""
        self._fund(100.0)
        order = self._order()
        order.action_apply_referral_credit()
        self._goods(order).price_unit = 40.0
        self.assertEqual(order.amount_total, 0.0)
        self.assertEqual(order.referral_credit_amount, 40.0)
        self.assertTrue(self._messages(order, "referral credit was lowered"))
        order.action_confirm()
        self.assertEqual(self._balance(), 60.0)

    def test_contact_moved_to_another_company_cannot_spend_its_former_wallet(self):
        """Example 3: a contact's quotation holds its company's credit, the
        contact moves to another customer: confirming is refused until the
        credit is applied again; the former company's credit stays."""
        self._fund(100.0)
        order = self._order(self.sponsor_contact)
        order.action_apply_referral_credit()
        self.sponsor_contact.parent_id = self.customer_y
        self.assertTrue(self._messages(order, "will not be spent"))
        with self.assertRefused(UserError, "its customer is now Customer Y"):
            order.action_confirm()
        self.assertEqual(order.state, "draft")
        self.assertEqual(self._balance(), 100.0)
        order.action_fit_referral_credit()
        self.assertFalse(self._credit_lines(order))
        order.action_confirm()
        self.assertEqual(self._balance(), 100.0)
        self.assertEqual(self._balance(self.customer_y), 0.0)
        self.assertEqual(order.amount_total, 100.0)

    def test_invoice_switched_to_company_currency_spends_what_it_shows(self):
        """Example 4: an order in a currency worth half the company's spends
        100 (200 of its currency); its draft invoice switched to the company
        currency shows 200 of credit: posting spends 200, or is refused."""
        foreign = self._foreign_currency(2.0)
        pricelist = self.env["product.pricelist"].create(
            {"name": "Foreign", "currency_id": foreign.id}
        )
        self._fund(100.0)
        order = self._order(price=400.0, pricelist_id=pricelist.id)
        order.action_apply_referral_credit()
        self.assertEqual(self._credit_lines(order).price_total, -200.0)
        order.action_confirm()
        self.assertEqual(self._balance(), 0.0)
        invoice = order._create_invoices()
        invoice.currency_id = self.currency
        self.assertEqual(self._credit_lines(invoice).price_total, -200.0)
        with self.assertRefused(UserError, "less than the .*200.00"):
            invoice.action_post()
        self.assertEqual(invoice.state, "draft")
        self.assertEqual(self._balance(), 0.0)
        self._fund(100.0)
        invoice.action_post()
        self.assertEqual(self._balance(), 0.0)
        spent = self.Transaction.search(
            [("invoice_id", "=", invoice.id), ("transaction_type", "=", "debit")]
        )
        self.assertEqual(spent.amount, 200.0)
        self.assertEqual(self._held(order.order_line), 0.0)

    def test_one_referral_earns_one_reward_whatever_the_path(self):
        """Example 5: 60 of a 100 reward spent, the referee's first order
        cancelled (40 reversed), the sponsor's order cancelled (the 60 come
        back into the revoked reward, revoked at once), the referee orders
        again: 100 in all, not 160."""
        referral, first_order = self._reward_referral("Five Ltd", price=1000.0)
        self.assertEqual(self._balance(), 100.0)
        own = self._order(price=60.0)
        own.action_apply_referral_credit()
        own.action_confirm()
        self.assertEqual(self._balance(), 40.0)
        first_order.with_context(disable_cancel_warning=True).action_cancel()
        self.assertEqual(self._balance(), 0.0)
        self.assertIn("already spent or lost", referral.message_ids[0].body)
        own.with_context(disable_cancel_warning=True).action_cancel()
        self.assertEqual(self._balance(), 0.0)
        again = self._create_order(referral.referee_id)
        again.order_line.write({"price_unit": 1000.0, "tax_id": [Command.clear()]})
        again.action_confirm()
        self._process_lifecycle_queue()
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(referral.reward_amount, 100.0)
        self.assertEqual(self._balance(), 100.0)

    # (Example 6, merging contacts, is in test_wallet_merge.py.)

    # ------------------------------------------- bounded by the document

    def test_lowered_quantity_of_invoiced_order_refused_and_nothing_written(self):
        self._fund(200.0)
        order = self._order(quantity=2.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        goods = self._goods(order)
        with self.assertRefused(UserError, "would become a refund"):
            goods.product_uom_qty = 1.0
        self.assertEqual(goods.product_uom_qty, 2.0)
        self.assertEqual(self._balance(), 0.0)
        # Refunded first, the order may change: the credit came back with
        # the credit note and the order carries none of it any more.
        self._refund(invoice)
        self.assertEqual(self._balance(), 200.0)
        goods.product_uom_qty = 1.0
        self.assertEqual(order.amount_total, 0.0)
        again = order._create_invoices()
        self.assertEqual(again.amount_total, 0.0)
        again.action_post()
        self.assertEqual(self._balance(), 100.0)

    def test_discount_and_removed_line_shrink_the_credit(self):
        self._fund(300.0)
        order = self.env["sale.order"].create(
            {
                "partner_id": self.sponsor.id,
                "order_line": [
                    Command.create({"product_id": self.item.id, "price_unit": price})
                    for price in (200.0, 100.0)
                ],
            }
        )
        order.action_apply_referral_credit()
        self.assertEqual(order.referral_credit_amount, 300.0)
        order.action_confirm()
        first, second = self._goods(order)
        first.discount = 50.0
        self.assertEqual(order.referral_credit_amount, 200.0)
        self.assertEqual(self._balance(), 100.0)
        # Through the form, as a salesperson would.
        with Form(order) as form:
            with form.order_line.edit(1) as line:
                line.product_uom_qty = 0.0
        self.assertEqual(order.amount_total, 0.0)
        self.assertEqual(order.referral_credit_amount, 100.0)
        self.assertEqual(self._balance(), 200.0)
        self.assertEqual(second.product_uom_qty, 0.0)

    def test_order_change_through_the_form_fits_once_after_all_lines(self):
        """Lowering one line and adding another in one save does not shrink
        the credit: the order is worth as much as before."""
        self._fund(100.0)
        order = self._order()
        order.action_apply_referral_credit()
        with Form(order) as form:
            with form.order_line.edit(0) as line:
                line.price_unit = 40.0
            with form.order_line.new() as line:
                line.product_id = self.item
                line.price_unit = 60.0
        self.assertEqual(order.referral_credit_amount, 100.0)
        self.assertEqual(order.amount_total, 0.0)
        self.assertFalse(self._messages(order, "referral credit was lowered"))

    def test_draft_invoice_line_lowered_shrinks_its_credit(self):
        self._fund(100.0)
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.sponsor.id,
                "invoice_date": self.today,
                "invoice_line_ids": [
                    Command.create({"product_id": self.item.id, "price_unit": 100.0})
                ],
            }
        )
        invoice._apply_referral_credit(self._wallet(), 100.0)
        product_line = invoice.invoice_line_ids - self._credit_lines(invoice)
        invoice.write(
            {
                "invoice_line_ids": [
                    Command.update(product_line.id, {"price_unit": 30.0})
                ]
            }
        )
        self.assertEqual(invoice.amount_total, 0.0)
        self.assertEqual(invoice.referral_credit_amount, 30.0)
        invoice.action_post()
        self.assertEqual(self._balance(), 70.0)

    def test_partial_delivery_invoice_carries_what_its_goods_are_worth(self):
        """An invoice of part of an order carries at most what its goods are
        worth: the rest of the credit goes back to the wallet, the invoice
        never becomes a credit note."""
        self.item.invoice_policy = "delivery"
        self._fund(150.0)
        order = self._order(quantity=2.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        self._goods(order).qty_delivered = 1.0
        invoice = self._invoice_with_wizard(order)
        self.assertRecordValues(
            invoice, [{"move_type": "out_invoice", "amount_total": 0.0}]
        )
        self.assertEqual(invoice.referral_credit_amount, 100.0)
        invoice.action_post()
        self.assertEqual(self._balance(), 50.0)

    def test_down_payment_then_final_invoice_stay_bounded(self):
        self._fund(100.0)
        order = self._order(price=200.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        wizard = (
            self.env["sale.advance.payment.inv"]
            .with_context(active_model="sale.order", active_ids=order.ids)
            .create({"advance_payment_method": "fixed", "fixed_amount": 100.0})
        )
        wizard.create_invoices()
        down_payment = order.invoice_ids
        down_payment.action_post()
        self.assertEqual(down_payment.amount_total, 100.0)
        final = self._invoice_with_wizard(order)
        self.assertRecordValues(
            final, [{"move_type": "out_invoice", "amount_total": 0.0}]
        )
        final.action_post()
        self.assertEqual(self._balance(), 0.0)

    def test_credit_note_of_an_order_paid_with_credit_never_pays_out(self):
        """A down payment invoice of an order paid partly with credit,
        switched into a credit note, would owe the customer money it never
        paid: refused."""
        self._fund(100.0)
        order = self._order(price=400.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        wizard = (
            self.env["sale.advance.payment.inv"]
            .with_context(active_model="sale.order", active_ids=order.ids)
            .create({"advance_payment_method": "percentage", "amount": 30.0})
        )
        wizard.create_invoices()
        down_payment = order.invoice_ids
        down_payment.action_switch_move_type()
        with self.assertRefused(UserError, "would become a refund"):
            down_payment.action_post()
        self.assertEqual(down_payment.state, "draft")
        self.assertEqual(self._balance(), 0.0)

    def test_consolidated_invoice_of_two_orders_spends_each_order_once(self):
        self._fund(150.0)
        first = self._order(price=100.0)
        first.action_apply_referral_credit()
        first.action_confirm()
        second = self._order(price=200.0)
        second.action_apply_referral_credit()
        second.action_confirm()
        self.assertEqual(self._balance(), 0.0)
        invoice = self._invoice_with_wizard(first | second, consolidated_billing=True)
        self.assertEqual(len(invoice), 1)
        self.assertEqual(invoice.referral_credit_amount, 150.0)
        invoice.action_post()
        self.assertEqual(self._balance(), 0.0)
        self.assertEqual(self._held(invoice.invoice_line_ids), 150.0)
        self.assertEqual(self._held((first | second).order_line), 0.0)
        self._refund(invoice)
        self.assertEqual(self._balance(), 150.0)

    def test_invoice_switched_to_credit_note_drops_its_credit(self):
        self._fund(100.0)
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.sponsor.id,
                "invoice_date": self.today,
                "invoice_line_ids": [
                    Command.create({"product_id": self.item.id, "price_unit": 300.0})
                ],
            }
        )
        invoice._apply_referral_credit(self._wallet(), 100.0)
        invoice.action_switch_move_type()
        self.assertEqual(invoice.move_type, "out_refund")
        self.assertFalse(self._credit_lines(invoice))
        self.assertEqual(invoice.amount_total, 300.0)
        self.assertTrue(self._messages(invoice, "refunds none"))
        invoice.action_post()
        self.assertEqual(self._balance(), 100.0)

    # ------------------------------------------------------------ binding

    def test_invoice_address_of_another_company_spends_the_orders_customer(self):
        """An order invoiced to another company's address: its invoice
        spends the order's customer's credit, never strands it."""
        billing = self.env["res.partner"].create(
            {"name": "Billing Desk", "parent_id": self.customer_y.id, "type": "invoice"}
        )
        self._fund(100.0)
        order = self._order(partner_invoice_id=billing.id)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        self.assertEqual(invoice.commercial_partner_id, self.customer_y)
        self.assertEqual(
            self._credit_lines(invoice).referral_credit_wallet_id, self._wallet()
        )
        invoice.action_post()
        self.assertEqual(self._balance(), 0.0)
        self._refund(invoice)
        self.assertEqual(self._balance(), 100.0)

    def test_confirmed_order_of_a_moved_contact_gives_the_credit_back(self):
        self._fund(100.0)
        order = self._order(self.sponsor_contact, price=150.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual(self._balance(), 0.0)
        self.sponsor_contact.parent_id = self.customer_y
        self.assertEqual(self._balance(), 100.0)
        self.assertFalse(self._credit_lines(order))
        self.assertEqual(order.amount_total, 150.0)
        self.assertTrue(self._messages(order, "went back to that wallet"))

    def test_moved_contact_order_already_on_a_draft_invoice(self):
        """The order's credit line an invoice refers to stays, at zero; the
        draft invoice is refused until its credit line goes."""
        self._fund(100.0)
        order = self._order(self.sponsor_contact, price=150.0)
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        self.sponsor_contact.parent_id = self.customer_y
        self.assertEqual(self._balance(), 100.0)
        self.assertEqual(self._credit_lines(order).price_total, 0.0)
        with self.assertRefused(UserError, "its customer is now Customer Y"):
            invoice.action_post()
        self.assertEqual(self._balance(), 100.0)
        self._credit_lines(invoice).unlink()
        invoice.action_post()
        self.assertEqual(invoice.amount_total, 150.0)
        self.assertEqual(self._balance(), 100.0)

    def test_discount_mode_credit_shrinks_over_its_taxes(self):
        """Credit lowering each tax's base shrinks tax by tax: the total
        stays exactly zero, the surplus goes back."""
        self.program.credit_tax_mode = "discount"
        tax_10, tax_20 = self.env["account.tax"].create(
            [
                {"name": "Tax 10", "amount": 10.0, "type_tax_use": "sale"},
                {"name": "Tax 20", "amount": 20.0, "type_tax_use": "sale"},
            ]
        )
        self._fund(2000.0)
        order = self.env["sale.order"].create(
            {
                "partner_id": self.sponsor.id,
                "order_line": [
                    Command.create(
                        {
                            "product_id": self.item.id,
                            "price_unit": price,
                            "tax_id": [Command.set(tax.ids)],
                        }
                    )
                    for price, tax in ((1000.0, tax_10), (500.0, tax_20))
                ],
            }
        )
        order.action_apply_referral_credit()
        self.assertEqual(order.amount_total, 0.0)
        self.assertEqual(len(self._credit_lines(order)), 2)
        order.action_confirm()
        self.assertEqual(self._balance(), 300.0)
        self._goods(order)[1].product_uom_qty = 0.0
        self.assertEqual(order.amount_total, 0.0)
        self.assertAlmostEqual(order.referral_credit_amount, 1100.0, places=2)
        self.assertAlmostEqual(self._balance(), 900.0, places=2)

    def test_draft_invoice_of_a_moved_contact_refused_until_refitted(self):
        self._fund(100.0)
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.sponsor_contact.id,
                "invoice_date": self.today,
                "invoice_line_ids": [
                    Command.create({"product_id": self.item.id, "price_unit": 100.0})
                ],
            }
        )
        invoice._apply_referral_credit(self._wallet(), 80.0)
        self.sponsor_contact.parent_id = self.customer_y
        with self.assertRefused(UserError, "its customer is now Customer Y"):
            invoice.action_post()
        self.assertEqual(invoice.state, "draft")
        self.assertEqual(self._balance(), 100.0)
        self._credit_lines(invoice).unlink()
        invoice.action_post()
        self.assertEqual(self._balance(), 100.0)

    # --------------------------------------------- given back keeps expiry

    def test_given_back_credit_restores_the_very_credits_and_their_expiry(self):
        soon = self._fund(60.0, expiry_date="2098-01-31")
        later = self._fund(60.0, expiry_date="2099-12-31")
        order = self._order()
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual((soon | later).mapped("remaining_amount"), [0.0, 20.0])
        order.with_context(disable_cancel_warning=True).action_cancel()
        # Both credits are whole again, each with its own expiry: the 60 of
        # January 2098 did not take the expiry of December 2099.
        self.assertEqual((soon | later).mapped("remaining_amount"), [60.0, 60.0])
        self.assertEqual(self._balance(), 120.0)
        reversal = self.Transaction.search(
            [("sale_order_id", "=", order.id), ("transaction_type", "=", "reversal")]
        )
        self.assertRecordValues(reversal, [{"amount": 100.0, "remaining_amount": 0.0}])

    def test_credit_note_restores_oldest_credits_first(self):
        soon = self._fund(50.0, expiry_date="2098-01-31")
        later = self._fund(50.0, expiry_date="2099-12-31")
        order = self._order()
        order.action_apply_referral_credit()
        order.action_confirm()
        invoice = order._create_invoices()
        invoice.action_post()
        refund = self._refund(invoice, post=False)
        refund.write(
            {
                "invoice_line_ids": [
                    Command.update(line.id, {"price_unit": line.price_unit * 0.3})
                    for line in refund.invoice_line_ids
                ]
            }
        )
        refund.action_post()
        self.assertEqual((soon | later).mapped("remaining_amount"), [30.0, 0.0])
        refund.button_draft()
        self.assertEqual((soon | later).mapped("remaining_amount"), [0.0, 0.0])
        refund.button_cancel()
        invoice.button_draft()
        self.assertEqual((soon | later).mapped("remaining_amount"), [0.0, 0.0])
        order.with_context(disable_cancel_warning=True).action_cancel()
        self.assertEqual((soon | later).mapped("remaining_amount"), [50.0, 50.0])

    def test_credit_given_back_after_its_expiry_expires_at_once(self):
        credit = self._fund(100.0, expiry_date=self.today)
        order = self._order()
        order.action_apply_referral_credit()
        order.action_confirm()
        self.env.cr.execute(
            "UPDATE referral_wallet_transaction SET expiry_date = %s WHERE id = %s",
            [self.today - fields.date.resolution, credit.id],
        )
        self.Transaction.invalidate_model(["expiry_date"])
        order.with_context(disable_cancel_warning=True).action_cancel()
        self.assertEqual(self._balance(), 0.0)
        self.assertEqual(credit.remaining_amount, 0.0)
        expiry = self.Transaction.search(
            [
                ("reversed_transaction_id", "=", credit.id),
                ("transaction_type", "=", "expiry"),
            ]
        )
        self.assertEqual(expiry.amount, 100.0)

    def test_invoice_reset_while_its_credit_note_stays_posted_moves_no_credit(self):
        credit = self._fund(100.0, expiry_date="2098-01-31")
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.sponsor.id,
                "invoice_date": self.today,
                "invoice_line_ids": [
                    Command.create({"product_id": self.item.id, "price_unit": 100.0})
                ],
            }
        )
        invoice._apply_referral_credit(self._wallet(), 100.0)
        invoice.action_post()
        self._refund(invoice)
        self.assertEqual(credit.remaining_amount, 100.0)
        invoice.button_draft()
        # The invoice spends nothing, its credit note gives nothing back.
        self.assertEqual(credit.remaining_amount, 100.0)
        self.assertEqual(self._balance(), 100.0)
        invoice.action_post()
        self.assertEqual(credit.remaining_amount, 100.0)
        self.assertEqual(self._balance(), 100.0)

    # ------------------------------------------- rewards from the documents

    def test_reverse_and_create_on_referee_invoice_keeps_one_reward(self):
        referral, order = self._reward_referral("Reversed Ltd", price=1000.0)
        invoice = order._create_invoices()
        invoice.action_post()
        wizard = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"journal_id": invoice.journal_id.id, "reason": "test"})
        )
        wizard.modify_moves()
        # The full credit note revoked it, the new invoice earns it again.
        self.assertEqual(self._balance(), 0.0)
        wizard.new_move_ids.action_post()
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(referral.reward_amount, 100.0)
        self.assertEqual(self._balance(), 100.0)

    def test_referee_credit_note_reset_and_cancelled_earns_the_reward_again(self):
        referral, order = self._reward_referral("Corrected Ltd", price=1000.0)
        invoice = order._create_invoices()
        invoice.action_post()
        refund = self._refund(invoice)
        self.assertEqual(referral.state, "in_progress")
        self.assertEqual(self._balance(), 0.0)
        refund.button_draft()
        refund.button_cancel()
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(referral.first_order_id, order)
        self.assertEqual(referral.reward_amount, 100.0)
        self.assertEqual(self._balance(), 100.0)

    def test_reward_refused_by_an_approver_is_not_granted_again(self):
        self.program.approval_required = True
        referral, order = self._reward_referral("Refused Ltd", price=1000.0)
        referral.transaction_ids.with_user(self.approver).action_cancel()
        self.assertTrue(referral.reward_refused)
        invoice = order._create_invoices()
        invoice.action_post()
        self._process_lifecycle_queue()
        self.assertFalse(
            referral.transaction_ids.filtered(lambda t: t.state != "cancelled")
        )
