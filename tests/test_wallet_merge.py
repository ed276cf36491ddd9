# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Odoo's Merge Contacts on customers that have referral wallets, referrals
and codes: no database error, every unit of credit kept in one wallet per
customer and company, the history readable, referrals that no longer clash,
codes kept for the contact that survives."""

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletMerge(WalletCommon):
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
        cls.duplicate = cls._create_customer(
            "Sponsor Corp (duplicate)", email="boss@sponsor.example.com"
        )

    def _merge(self, partners, survivor):
        wizard = self.env["base.partner.merge.automatic.wizard"].create(
            {
                "state": "selection",
                "partner_ids": [Command.set(partners.ids)],
                "dst_partner_id": survivor.id,
            }
        )
        wizard.action_merge()

    def _order_with_credit(self, partner, price=100.0):
        order = self.env["sale.order"].create(
            {
                "partner_id": partner.id,
                "order_line": [
                    Command.create({"product_id": self.item.id, "price_unit": price})
                ],
            }
        )
        order.action_apply_referral_credit()
        order.action_confirm()
        return order

    def test_merging_two_sponsors_with_wallets_merges_the_wallets(self):
        """Example 6: Merge Contacts on two sponsors that both have a wallet
        no longer ends in a database error."""
        kept = self._wallet(self.sponsor)._credit(
            100.0, name="Reward of the original", expiry_date="2098-06-30"
        )
        moved = self._wallet(self.duplicate)._credit(
            50.0, name="Reward of the duplicate", expiry_date="2097-03-31"
        )
        order = self._order_with_credit(self.duplicate, price=30.0)
        duplicate_wallet = self._wallet(self.duplicate)
        self._merge(self.sponsor | self.duplicate, self.sponsor)
        self.assertFalse(self.duplicate.exists())
        self.assertFalse(duplicate_wallet.exists())
        wallets = self.Wallet.search([("partner_id", "=", self.sponsor.id)])
        self.assertEqual(len(wallets), 1, "one wallet per customer and company")
        self.assertEqual(wallets.balance, 120.0)
        self.assertEqual(
            set(wallets.transaction_ids.mapped("name")),
            {
                "Reward of the original",
                "Reward of the duplicate",
                f"Credit spent on {order.name}",
            },
        )
        self.assertEqual((kept | moved).wallet_id, wallets)
        self.assertEqual(moved.expiry_date, fields.Date.to_date("2097-03-31"))
        self.assertTrue(
            wallets.message_ids.filtered(
                lambda m: "Merged with the wallet of Sponsor Corp (duplicate)"
                in (m.body or "")
            )
        )
        # The merged contact's order still spends, now the survivor's wallet,
        # and gives its credit back there, into the credit it consumed.
        self.assertEqual(order.order_line.referral_credit_wallet_id, wallets)
        order.with_context(disable_cancel_warning=True).action_cancel()
        self.assertEqual(wallets.balance, 150.0)
        self.assertEqual(moved.remaining_amount, 50.0)

    def test_merge_keeps_a_wallet_of_each_company(self):
        self._wallet(self.duplicate, self.other_company)._credit(40.0, name="Other")
        self._wallet(self.sponsor)._credit(10.0, name="Here")
        self._merge(self.sponsor | self.duplicate, self.sponsor)
        wallets = self.Wallet.search([("partner_id", "=", self.sponsor.id)])
        self.assertEqual(
            sorted((w.company_id.name, w.balance) for w in wallets),
            sorted([(self.company.name, 10.0), (self.other_company.name, 40.0)]),
        )

    def test_merge_of_two_referees_keeps_one_active_referral(self):
        self.program.sponsor_policy = "any"
        referee = self._create_customer("Referee One")
        twin = self._create_customer("Referee Twin")
        first = self._refer(referee_id=referee.id)
        second = self._refer(
            sponsor=self._create_customer("Second Sponsor"), referee_id=twin.id
        )
        first.action_start()
        self._merge(referee | twin, referee)
        self.assertEqual((first | second).mapped("referee_id"), referee)
        self.assertEqual(first.state, "in_progress")
        self.assertEqual(second.state, "lost")
        self.assertEqual(
            second.lost_reason_id,
            self.env.ref("sale_referral_lifecycle.referral_lost_reason_merged"),
        )
        self.assertIn("already referred in", second.message_ids[0].body)
        self.assertEqual(referee.sponsor_id, self.sponsor)

    def test_merge_of_a_rewarded_duplicate_referee_revokes_its_second_reward(self):
        referral_a, _order_a = self._reward_referral("Twin Ltd", price=1000.0)
        self.program.sponsor_policy = "any"
        sponsor_b = self._create_customer("Second Sponsor")
        referral_b, _order_b = self._reward_referral(
            "Twin Ltd (again)", sponsor=sponsor_b, price=500.0
        )
        self.assertEqual(self._wallet(sponsor_b).balance, 50.0)
        self._merge(
            referral_a.referee_id | referral_b.referee_id, referral_a.referee_id
        )
        self.assertEqual(referral_a.state, "rewarded")
        self.assertEqual(referral_b.state, "lost")
        self.assertEqual(self._wallet().balance, 100.0)
        self.assertEqual(self._wallet(sponsor_b).balance, 0.0)
        self.assertEqual(referral_b.reward_amount, 0.0)

    def test_merging_a_sponsor_with_its_referee_closes_the_self_referral(self):
        referral = self._refer(referee_id=self.duplicate.id)
        self._merge(self.sponsor | self.duplicate, self.sponsor)
        self.assertEqual(referral.state, "lost")
        self.assertEqual(referral.referee_id, self.sponsor)
        self.assertIn("were merged", referral.message_ids[0].body)

    def test_merged_contact_code_is_retired_never_reused(self):
        code = self.duplicate.referral_code
        self._merge(self.sponsor | self.duplicate, self.sponsor)
        self.assertTrue(self.env["referral.retired.code"].search([("code", "=", code)]))
        self.assertFalse(self.env["res.partner"]._find_by_referral_code([code]))
        other = self._create_customer("Other")
        with self.assertRefused(ValidationError, "never given to another contact"):
            other.with_user(self.sale_manager).referral_code = code
        self.assertNotEqual(self.sponsor.referral_code, code)

    def test_merge_keeps_lifecycle_values_computed_from_all_orders(self):
        self.env["sale.order"].create(
            {
                "partner_id": self.duplicate.id,
                "order_line": [Command.create({"product_id": self.item.id})],
            }
        ).action_confirm()
        self._merge(self.sponsor | self.duplicate, self.sponsor)
        self._process_lifecycle_queue()
        self.assertEqual(self.sponsor.lifecycle_order_count, 2)
        self.assertFalse(self.sponsor.lifecycle_stage_locked)
