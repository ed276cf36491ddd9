# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command
from odoo.exceptions import UserError
from odoo.tests import Form, tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestReferralQuotation(WalletCommon):
    """New Quotation on a referral, as on an opportunity: the referred
    company, the referral, its salesperson and the Referral source
    prefilled; the quotation linked at once and counted on the referral."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.referral_source = cls.env.ref("sale_referral_lifecycle.utm_source_referral")

    def _new_quotation(self, referral, user=None):
        """The quotation the New Quotation button opens, filled in and saved
        as the salesperson would."""
        referral = referral.with_user(user or self.salesman)
        action = referral.action_new_quotation()
        self.assertEqual(action["res_model"], "sale.order")
        Order = self.env["sale.order"].with_user(user or self.salesman)
        with Form(Order.with_context(**action["context"])) as form:
            with form.order_line.new() as line:
                line.product_id = self.product
        return form.record

    def test_quotation_prefilled_and_linked_at_once(self):
        referral = self._refer()
        referral.user_id = self.salesman_2
        order = self._new_quotation(referral, user=self.salesman_2)
        self.assertRecordValues(
            order,
            [
                {
                    "partner_id": referral.referee_id.id,
                    "referral_id": referral.id,
                    "user_id": self.salesman_2.id,
                    "source_id": self.referral_source.id,
                    "origin": referral.name,
                    "company_id": referral.company_id.id,
                    "state": "draft",
                }
            ],
        )
        self.assertEqual(referral.with_user(self.salesman_2).quotation_count, 1)
        action = referral.with_user(self.salesman_2).action_view_quotations()
        self.assertEqual(
            (action["res_id"], action["views"]), (order.id, [(False, "form")])
        )

    def test_confirming_it_wins_then_rewards_the_referral(self):
        referral = self._refer()
        referral.action_start()
        order = self._new_quotation(referral)
        order.order_line.write({"price_unit": 1000.0, "tax_id": [Command.clear()]})
        order.with_user(self.salesman).action_confirm()
        self.assertRecordValues(
            referral,
            [{"state": "won", "first_order_id": order.id, "quotation_count": 0}],
        )
        self._process_lifecycle_queue()
        self.assertEqual(referral.state, "rewarded")
        reward = referral.transaction_ids
        self.assertRecordValues(
            reward, [{"transaction_type": "credit", "amount": 100.0, "state": "posted"}]
        )
        self.assertEqual(self._wallet().balance, 100.0)

    def test_several_quotations_listed(self):
        referral = self._refer()
        orders = self._new_quotation(referral) | self._new_quotation(referral)
        self.assertEqual(referral.quotation_count, 2)
        action = referral.with_user(self.salesman).action_view_quotations()
        self.assertEqual(
            self.env["sale.order"].search(action["domain"]),
            orders.sorted("id", reverse=True),
        )
        self.assertFalse(action.get("res_id"))
        # A cancelled quotation is no longer counted.
        orders[0]._action_cancel()
        self.assertEqual(referral.quotation_count, 1)

    def test_refused_on_closed_referrals(self):
        lost = self._refer(referee_company_name="Lost Ltd")
        lost.action_mark_lost()
        rejected = self._refer(referee_company_name="Rejected Ltd")
        rejected.action_reject()
        self.sponsor.vat = "BE0477472701"
        held = self._refer(referee_company_name="Held Ltd", referee_vat="BE0477472701")
        self.assertEqual(held.state, "to_review")
        won = self._refer(referee_company_name="Won Ltd")
        self._confirm_order(won.referee_id)
        self.assertEqual(won.state, "rewarded")
        orders_before = self.env["sale.order"].search_count([])
        for referral in lost | rejected | held | won:
            with self.assertRaisesRegex(UserError, "new or in-progress referrals"):
                referral.with_user(self.salesman).action_new_quotation()
        self.assertEqual(self.env["sale.order"].search_count([]), orders_before)

    def test_quotation_in_the_referral_company(self):
        program = self.env["referral.program"]._get_company_program(self.other_company)
        program.sponsor_policy = "any"
        referral = self.Referral.with_company(self.other_company).create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Elsewhere Ltd",
                "company_id": self.other_company.id,
            }
        )
        context = referral.action_new_quotation()["context"]
        order = (
            self.env["sale.order"]
            .with_company(self.other_company)
            .with_context(**context)
            .create({"order_line": [Command.create({"product_id": self.product.id})]})
        )
        self.assertRecordValues(
            order,
            [{"company_id": self.other_company.id, "referral_id": referral.id}],
        )

    def test_context_links_no_credit_transaction_to_the_referral(self):
        """Confirming the quotation in the New Quotation's context (as the
        web client does) spends the customer's own credit: that debit is no
        movement of the referral."""
        referral = self._refer()
        # The referred company has credit of its own (it sponsors too).
        wallet = self._wallet(referral.referee_id)
        wallet._credit(50.0, name="Own credit")
        self.program.redeem_scope = "any"
        context = referral.action_new_quotation()["context"]
        Order = self.env["sale.order"].with_context(**context)
        order = Order.create(
            {"order_line": [Command.create({"product_id": self.product.id})]}
        )
        order.with_context(**context).action_apply_referral_credit()
        order.with_context(**context).action_confirm()
        debit = wallet.transaction_ids.filtered(lambda t: t.transaction_type == "debit")
        self.assertRecordValues(
            debit, [{"amount": 50.0, "referral_id": False, "sale_order_id": order.id}]
        )
        self.assertEqual(referral.reward_amount, 0.0)

    def test_quotation_of_another_customer_is_not_linked(self):
        """The customer changed in the New Quotation form, or later: the
        quotation is no longer the referral's."""
        referral = self._refer()
        context = referral.action_new_quotation()["context"]
        other = (
            self.env["sale.order"]
            .with_context(**context)
            .create(
                {
                    "partner_id": self.sponsor.id,
                    "order_line": [Command.create({"product_id": self.product.id})],
                }
            )
        )
        self.assertFalse(other.referral_id)
        order = self._new_quotation(referral)
        self.assertEqual(order.referral_id, referral)
        order.partner_id = self.sponsor_contact
        self.assertFalse(order.referral_id)
        self.assertEqual(referral.quotation_count, 0)
