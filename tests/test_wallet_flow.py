# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command, fields
from odoo.tests import Form, tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletFlow(WalletCommon):
    """The whole story, each step by the user who does it."""

    def test_reward_spent_on_renewal_then_on_invoice(self):
        self.program.write(
            {
                "reward_percent": 10.0,
                "redeem_scope": "renewal",
                "auto_apply_on_renewal": True,
                "credit_tax_mode": "payment",
            }
        )
        plan = self.env["product.product"].create(
            {
                "name": "Yearly plan",
                "type": "service",
                "list_price": 120.0,
                "subscription_months": 12,
                "invoice_policy": "order",
                "taxes_id": [Command.clear()],
            }
        )
        self._confirm_order(
            self.sponsor, order_line=[Command.create({"product_id": plan.id})]
        )
        # 1. A salesperson confirms the referred company's first order.
        referral = self._refer(referee_company_name="Referred Ltd")
        first = (
            self.env["sale.order"]
            .with_user(self.salesman)
            .create(
                {
                    "partner_id": referral.referee_id.id,
                    "order_line": [
                        Command.create(
                            {
                                "product_id": self.product.id,
                                "price_unit": 2000.0,
                                "tax_id": False,
                            }
                        )
                    ],
                }
            )
        )
        first.action_confirm()
        # 2. A minute later (the lifecycle queue's job), the sponsor's wallet
        # shows the reward.
        self._process_lifecycle_queue()
        wallet = self._wallet().with_user(self.salesman)
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(wallet.balance, 200.0)
        self.assertEqual(
            self.sponsor.with_user(self.salesman).referral_credit_balance, 200.0
        )
        # 3. Its renewal quotation applies the credit by itself.
        renewal = (
            self.env["sale.order"]
            .with_user(self.salesman)
            .create(
                {
                    "partner_id": self.sponsor.id,
                    "order_line": [Command.create({"product_id": plan.id})],
                }
            )
        )
        self.assertTrue(renewal.is_renewal)
        self.assertEqual(renewal.referral_credit_amount, 120.0)
        self.assertEqual(renewal.amount_total, 0.0)
        renewal.action_confirm()
        self.assertEqual(wallet.balance, 80.0)
        # 4. An accountant applies the rest on a draft invoice.
        invoice = (
            self.env["account.move"]
            .with_user(self.accountant)
            .create(
                {
                    "move_type": "out_invoice",
                    "partner_id": self.sponsor.id,
                    "invoice_date": fields.Date.context_today(self.Transaction),
                    "invoice_line_ids": [
                        Command.create(
                            {
                                "product_id": self.product.id,
                                "price_unit": 500.0,
                                "tax_ids": False,
                            }
                        )
                    ],
                }
            )
        )
        action = invoice.action_open_referral_credit_wizard()
        wizard = Form(
            self.env[action["res_model"]]
            .with_user(self.accountant)
            .with_context(**action["context"])
        ).save()
        self.assertEqual(wizard.amount, 80.0)
        wizard.action_apply()
        invoice.action_post()
        self.assertEqual(invoice.amount_total, 420.0)
        self.assertEqual(wallet.balance, 0.0)
        self.assertEqual(
            wallet.transaction_ids.sorted("id").mapped("transaction_type"),
            ["credit", "debit", "debit"],
        )
