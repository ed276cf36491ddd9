# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletSaleOrder(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tax_10 = cls.env["account.tax"].create(
            {"name": "Tax 10", "amount": 10.0, "type_tax_use": "sale"}
        )
        cls.tax_20 = cls.env["account.tax"].create(
            {"name": "Tax 20", "amount": 20.0, "type_tax_use": "sale"}
        )
        cls.plan = cls.env["product.product"].create(
            {
                "name": "Yearly plan",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
                "taxes_id": [Command.set(cls.tax_10.ids)],
            }
        )
        cls.service = cls.env["product.product"].create(
            {
                "name": "Setup",
                "type": "service",
                "list_price": 500.0,
                "taxes_id": [Command.set(cls.tax_20.ids)],
            }
        )
        # The sponsor bought the plan once: its next plan order renews it.
        cls._confirm_plan_order(cls.sponsor)
        cls.program.write({"redeem_scope": "renewal", "credit_tax_mode": "discount"})

    @classmethod
    def _confirm_plan_order(cls, partner):
        order = cls._plan_order(partner)
        order.action_confirm()
        return order

    @classmethod
    def _plan_order(cls, partner, with_service=False, company=None):
        lines = [Command.create({"product_id": cls.plan.id, "product_uom_qty": 1})]
        if with_service:
            lines.append(
                Command.create({"product_id": cls.service.id, "product_uom_qty": 1})
            )
        values = {"partner_id": partner.id, "order_line": lines}
        if company:
            values["company_id"] = company.id
        return cls.env["sale.order"].create(values)

    def _fund(self, amount, partner=None, **values):
        return self._wallet(partner)._credit(amount, name="Test credit", **values)

    def _credit_lines(self, order):
        return order.order_line.filtered("referral_credit_wallet_id")

    def test_renewal_detected_and_editable(self):
        renewal = self._plan_order(self.sponsor)
        self.assertTrue(renewal.is_renewal)
        newcomer = self._create_customer("New Plan Ltd")
        first = self._plan_order(newcomer)
        self.assertFalse(first.is_renewal)
        no_plan = self._create_order(self.sponsor)
        self.assertFalse(no_plan.is_renewal)
        with Form(no_plan.with_user(self.salesman)) as form:
            form.is_renewal = True
        self.assertTrue(no_plan.is_renewal)

    def test_renewal_from_subscription_end_date(self):
        customer = self._create_customer("Imported Subscriber Ltd")
        self.assertFalse(self._plan_order(customer).is_renewal)
        customer.subscription_end_date = "2030-01-01"
        self.assertTrue(self._plan_order(customer).is_renewal)
        self.assertFalse(self._create_order(customer).is_renewal)

    def test_renewal_counts_only_earlier_orders(self):
        customer = self._create_customer("Second Plan Ltd")
        contact = self.env["res.partner"].create(
            {"name": "Carl Contact", "parent_id": customer.id}
        )
        first = self._confirm_plan_order(customer)
        second = self._plan_order(contact)
        self.assertTrue(second.is_renewal, "a contact renews its company's plan")
        second.action_confirm()
        (first | second)._compute_is_renewal()
        self.assertEqual((first | second).mapped("is_renewal"), [False, True])
        # Orders count in their company only (the end date is not per company).
        customer.subscription_end_date = False
        other_company_order = self._plan_order(customer, company=self.other_company)
        self.assertFalse(other_company_order.is_renewal)

    def test_apply_credit_split_over_taxes(self):
        self._fund(330.0)
        order = self._plan_order(self.sponsor, with_service=True)
        # 1,000 + 10% and 500 + 20%: 1,700 taxes included.
        self.assertEqual(order.amount_total, 1700.0)
        self.assertEqual(order.referral_credit_available, 330.0)
        order.action_apply_referral_credit()
        lines = self._credit_lines(order)
        self.assertEqual(len(lines), 2)
        by_tax = {line.tax_id: line for line in lines}
        # 330 / 1,700 of each group: 194.12 (1,000 at 10%) and 97.06 (500 at 20%)
        self.assertAlmostEqual(by_tax[self.tax_10].price_unit, -194.12, places=2)
        self.assertAlmostEqual(by_tax[self.tax_20].price_unit, -97.06, places=2)
        self.assertAlmostEqual(order.amount_total, 1370.0, places=1)
        self.assertAlmostEqual(order.referral_credit_amount, 330.0, places=1)

    def test_apply_credit_as_payment_without_tax(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._plan_order(self.sponsor, with_service=True)
        order.action_apply_referral_credit()
        line = self._credit_lines(order)
        self.assertRecordValues(
            line,
            [
                {
                    "price_unit": -100.0,
                    "price_total": -100.0,
                    "product_id": self.program.credit_product_id.id,
                }
            ],
        )
        self.assertFalse(line.tax_id)
        self.assertEqual(order.amount_total, 1600.0)

    def test_credit_capped_at_order_total_and_not_stacked(self):
        self._fund(5000.0)
        order = self._plan_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_apply_referral_credit()
        self.assertEqual(len(self._credit_lines(order)), 1)
        self.assertAlmostEqual(order.amount_total, 0.0, places=2)
        self.assertAlmostEqual(order.referral_credit_amount, 1100.0, places=2)

    def test_renewal_scope_refuses_other_orders(self):
        self._fund(100.0)
        order = self._create_order(self.sponsor)
        with self.assertRefused(UserError, "renewals only"):
            order.action_apply_referral_credit()
        self.assertFalse(self._credit_lines(order))
        self.program.redeem_scope = "any"
        order.action_apply_referral_credit()
        self.assertTrue(self._credit_lines(order))

    def test_no_credit_refused(self):
        order = self._plan_order(self.sponsor)
        with self.assertRefused(UserError, "no referral credit"):
            order.action_apply_referral_credit()

    def test_debit_posted_at_confirmation_oldest_credit_first(self):
        self.program.credit_tax_mode = "payment"
        later = self._fund(100.0, expiry_date="2099-01-01")
        sooner = self._fund(100.0, expiry_date="2098-01-01")
        order = self._plan_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        debit = self.Transaction.search([("sale_order_id", "=", order.id)])
        self.assertRecordValues(
            debit,
            [{"transaction_type": "debit", "amount": 200.0, "state": "posted"}],
        )
        self.assertEqual(debit.sale_order_line_id, self._credit_lines(order))
        self.assertEqual((sooner | later).mapped("remaining_amount"), [0.0, 0.0])
        self.assertEqual(self._wallet().balance, 0.0)

    def test_confirmation_refused_when_credit_spent_meanwhile(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._plan_order(self.sponsor)
        order.action_apply_referral_credit()
        self._wallet()._debit(50.0, name="Spent elsewhere")
        with self.assertRefused(
            UserError, "has .*50.00.* less than the .*100.00.*Fit Referral Credit"
        ):
            order.action_confirm()
        self.assertEqual(order.state, "draft")
        self.assertEqual(self._wallet().balance, 50.0)

    def test_cancel_releases_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._plan_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual(self._wallet().balance, 0.0)
        order._action_cancel()
        self.assertEqual(self._wallet().balance, 100.0)
        reversal = self.Transaction.search(
            [("transaction_type", "=", "reversal"), ("sale_order_id", "=", order.id)]
        )
        self.assertEqual(reversal.amount, 100.0)
        # Syncing again gives nothing more back.
        self.env["referral.ledger"]._sync(order_lines=order.order_line)
        self.assertEqual(self._wallet().balance, 100.0)

    def test_removed_quotation_line_spends_nothing(self):
        self._fund(100.0)
        order = self._plan_order(self.sponsor)
        order.action_apply_referral_credit()
        self._credit_lines(order).unlink()
        order.action_confirm()
        self.assertFalse(self.Transaction.search([("sale_order_id", "=", order.id)]))
        self.assertEqual(self._wallet().balance, 100.0)

    def test_auto_apply_on_renewal_quotation(self):
        self.program.auto_apply_on_renewal = True
        self._fund(100.0)
        renewal = self._plan_order(self.sponsor)
        self.assertAlmostEqual(renewal.referral_credit_amount, 100.0, places=2)
        other = self._create_order(self.sponsor)
        self.assertFalse(self._credit_lines(other))
        # Removed by hand, the credit is not applied again by itself.
        renewal.write({"order_line": [Command.unlink(self._credit_lines(renewal).id)]})
        renewal.write({"order_line": [Command.create({"product_id": self.service.id})]})
        self.assertFalse(self._credit_lines(renewal))

    def test_salesperson_applies_and_confirms_credit(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._plan_order(self.sponsor).with_user(self.salesman)
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual(self._wallet().with_user(self.salesman).balance, 0.0)

    def test_apply_credit_query_count(self):
        self._fund(100.0)
        order = self._plan_order(self.sponsor, with_service=True)
        self.env.flush_all()
        self.env.invalidate_all()
        # One of them the wallet's KEY SHARE lock before its credit lines.
        with self.assertQueryCount(__system__=44):
            order.action_apply_referral_credit()
            self.env.flush_all()

    def test_welcome_discount_once_on_first_order(self):
        self.program.referee_discount_percent = 10.0
        referral = self._refer(referee_company_name="Welcome Ltd")
        quotation = self._plan_order(referral.referee_id, with_service=True)
        self.assertTrue(quotation.referral_welcome_discount_available)
        quotation.action_apply_referral_welcome_discount()
        discount = quotation.order_line.filtered("is_referral_welcome_discount")
        self.assertEqual(len(discount), 2)
        self.assertAlmostEqual(quotation.amount_total, 1530.0, places=1)
        with self.assertRefused(UserError, "given once"):
            quotation.action_apply_referral_welcome_discount()
        quotation.action_confirm()
        self.assertFalse(
            self.Transaction.search([("sale_order_id", "=", quotation.id)])
        )
        second = self._plan_order(referral.referee_id)
        with self.assertRefused(UserError, "already ordered"):
            second.action_apply_referral_welcome_discount()

    def test_welcome_discount_automatic_on_first_quotation(self):
        self.program.write(
            {"referee_discount_percent": 10.0, "referee_discount_auto_apply": True}
        )
        referral = self._refer(referee_company_name="Auto Welcome Ltd")
        quotation = self._plan_order(referral.referee_id)
        self.assertAlmostEqual(quotation.amount_total, 990.0, places=1)
        stranger = self._plan_order(self._create_customer("Not Referred Ltd"))
        self.assertFalse(stranger.order_line.filtered("is_referral_welcome_discount"))

    def test_cancelled_first_order_revokes_reward(self):
        referral, order = self._reward_referral("Cancelled Ltd", price=1000.0)
        self.assertEqual(self._wallet().balance, 100.0)
        order.with_user(self.salesman_all)._action_cancel()
        self.assertEqual(self._wallet().balance, 0.0)
        self.assertEqual(referral.state, "in_progress")

    def test_discount_lines_never_spend_more_than_the_credit(self):
        # 100.05 over 1,000 at 10% and 500 at 20%: each line rounded, the
        # lines would spend 100.06; the fit shared with invoices moves the
        # largest lines' prices until they spend exactly the credit.
        self._fund(100.05)
        order = self._plan_order(self.sponsor, with_service=True)
        order.action_apply_referral_credit()
        self.assertEqual(len(self._credit_lines(order)), 2)
        self.assertAlmostEqual(order.referral_credit_amount, 100.05, places=2)
        order.action_confirm()
        self.assertEqual(order.state, "sale")
        self.assertAlmostEqual(self._wallet().balance, 0.0, places=2)

    def test_update_prices_keeps_credit_lines(self):
        self._fund(100.0)
        order = self._plan_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_update_prices()
        self.assertAlmostEqual(order.referral_credit_amount, 100.0, places=2)

    def test_credit_line_removed_from_confirmed_order_releases(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._plan_order(self.sponsor).with_user(self.salesman)
        order.action_apply_referral_credit()
        order.action_confirm()
        self.assertEqual(self._wallet().balance, 0.0)
        plan_line = order.order_line - self._credit_lines(order)
        with self.assertRefused(UserError, "you can't remove one of its lines"):
            plan_line.unlink()
        self._credit_lines(order).unlink()
        self.assertEqual(self._wallet().balance, 100.0)
        self.assertRecordValues(
            self._wallet().transaction_ids.sorted("id"),
            [
                {"transaction_type": "credit", "amount": 100.0, "sale_order_id": False},
                {
                    "transaction_type": "debit",
                    "amount": 100.0,
                    "sale_order_id": order.id,
                },
                {
                    "transaction_type": "reversal",
                    "amount": 100.0,
                    "sale_order_id": order.id,
                },
            ],
        )
        self.assertEqual(order.state, "sale")

    def test_credit_line_amount_locked_once_confirmed(self):
        self.program.credit_tax_mode = "payment"
        self._fund(100.0)
        order = self._plan_order(self.sponsor).with_user(self.salesman)
        order.action_apply_referral_credit()
        credit_line = self._credit_lines(order)
        # A quotation's credit line may still be changed.
        credit_line.price_unit = -80.0
        order.action_confirm()
        self.assertEqual(self._wallet().balance, 20.0)
        for values in (
            {"price_unit": -50.0},
            {"product_uom_qty": 2.0},
            {"discount": 10.0},
        ):
            with self.assertRefused(
                UserError, r"spent \S+\s?80\.00 of referral credit"
            ):
                credit_line.write(values)
        self.assertEqual(credit_line.price_total, -80.0)
        self.assertEqual(self._wallet().balance, 20.0)
        # Unchanged values and the other lines are not refused.
        credit_line.write({"price_unit": -80.0, "name": "Referral credit"})
        (order.order_line - credit_line).write({"name": "Renewal"})

    def test_salesperson_cannot_write_the_ledger(self):
        wallet = self._wallet()
        with self.assertRaises(AccessError):
            self.Transaction.with_user(self.salesman).create(
                {"wallet_id": wallet.id, "transaction_type": "credit", "amount": 1.0}
            )
        self.program.credit_tax_mode = "payment"
        self._fund(80.0)
        order = self._plan_order(self.sponsor).with_user(self.salesman)
        order.action_apply_referral_credit()
        order.action_confirm()
        debit = self.Transaction.with_user(self.salesman).search(
            [("sale_order_id", "=", order.id)]
        )
        self.assertRecordValues(
            debit,
            [
                {
                    "transaction_type": "debit",
                    "amount": 80.0,
                    "state": "posted",
                    "create_uid": self.salesman.id,
                }
            ],
        )

    def test_cancelled_first_order_reverses_only_unspent_reward(self):
        referral, order = self._reward_referral("Half Spent Ltd", price=1000.0)
        reward = referral.transaction_ids
        self._wallet()._debit(30.0, name="Spent on a renewal")
        order._action_cancel()
        self.assertEqual(self._wallet().balance, 0.0)
        self.assertRecordValues(
            reward.reversal_ids, [{"transaction_type": "reversal", "amount": 70.0}]
        )
        self.assertIn("30.00", referral.message_ids[0].body)
