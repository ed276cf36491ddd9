# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import importlib.util
from pathlib import Path

from odoo import Command
from odoo.tests import tagged

from .common import WalletCommon

MIGRATION = (
    Path(__file__).resolve().parent.parent
    / "migrations"
    / "18.0.1.2.0"
    / "post-migration.py"
)


@tagged("post_install", "-at_install")
class TestWelcomeDiscountProduct(WalletCommon):
    """The welcome discount has a product of its own: its lines read as a
    discount, not as sponsor credit spent, in the order and in the product
    reports."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.welcome = cls.env.ref(
            "sale_referral_lifecycle.product_referral_welcome_discount"
        )
        cls.credit = cls.env.ref("sale_referral_lifecycle.product_referral_credit")
        cls.program.referee_discount_percent = 10.0
        cls.untaxed = cls.env["product.product"].create(
            {
                "name": "Untaxed licence",
                "type": "service",
                "list_price": 1000.0,
                "taxes_id": [Command.clear()],
            }
        )
        cls.taxed = cls.env["product.product"].create(
            {"name": "Taxed licence", "type": "service", "list_price": 1000.0}
        )

    def _welcome_order(self, name="Welcome Ltd"):
        referral = self._refer(referee_company_name=name)
        order = self._create_order(
            referral.referee_id,
            order_line=[
                Command.create({"product_id": self.untaxed.id}),
                Command.create({"product_id": self.taxed.id}),
            ],
        )
        order.action_apply_referral_welcome_discount()
        return order

    def test_program_defaults_to_the_welcome_product(self):
        self.assertEqual(self.program.welcome_discount_product_id, self.welcome)
        self.assertRecordValues(
            self.welcome,
            [
                {
                    "type": "service",
                    "sale_ok": False,
                    "purchase_ok": False,
                    "taxes_id": [],
                }
            ],
        )
        program = self.env["referral.program"].create(
            {"name": "Second program", "company_id": self.other_company.id}
        )
        self.assertEqual(program.welcome_discount_product_id, self.welcome)

    def test_discount_lines_use_it_and_keep_the_lines_taxes(self):
        order = self._welcome_order()
        discount = order.order_line.filtered("is_referral_welcome_discount")
        self.assertEqual(discount.product_id, self.welcome)
        self.assertFalse(discount.referral_credit_wallet_id)
        # One line per group of taxes, as before.
        self.assertEqual(
            sorted(discount.mapped(lambda line: line.tax_id.ids)),
            sorted([[], self.taxed.taxes_id.ids]),
        )
        self.assertAlmostEqual(sum(discount.mapped("price_subtotal")), -200.0)
        # Sponsor credit keeps its own product.
        self._wallet(order.partner_id)._credit(50.0, name="Own credit")
        self.program.redeem_scope = "any"
        order.action_apply_referral_credit()
        self.assertEqual(
            order.order_line.filtered("referral_credit_wallet_id").product_id,
            self.credit,
        )

    def test_product_reports_tell_discount_from_credit(self):
        order = self._welcome_order()
        order.action_confirm()
        self.env.flush_all()
        rows = self.env["sale.report"]._read_group(
            [("order_reference", "=", f"sale.order,{order.id}")],
            ["product_id"],
            ["price_subtotal:sum"],
        )
        totals = dict(rows)
        self.assertAlmostEqual(totals[self.welcome], -200.0)
        self.assertNotIn(self.credit, totals)

    def test_chosen_product_used(self):
        other = self.env["product.product"].create(
            {"name": "Referral welcome", "type": "service", "sale_ok": False}
        )
        self.program.welcome_discount_product_id = other
        order = self._welcome_order()
        self.assertEqual(
            order.order_line.filtered("is_referral_welcome_discount").product_id, other
        )

    def test_migration_gives_existing_programs_the_product(self):
        """A database from 18.0.1.1.0: its programs had no welcome product
        (the column came before the product); the migration sets it, and
        only where it is missing."""
        chosen = self.env["product.product"].create(
            {"name": "Chosen welcome", "type": "service"}
        )
        other_program = self.env["referral.program"]._get_company_program(
            self.other_company
        )
        self.env.cr.execute(
            "UPDATE referral_program SET welcome_discount_product_id = NULL "
            "WHERE id = %s",
            [self.program.id],
        )
        other_program.welcome_discount_product_id = chosen
        self.program.invalidate_recordset()
        spec = importlib.util.spec_from_file_location("welcome_migration", MIGRATION)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        migration.migrate(self.env.cr, "18.0.1.1.0")
        self.env.invalidate_all()
        self.assertEqual(self.program.welcome_discount_product_id, self.welcome)
        self.assertEqual(other_program.welcome_discount_product_id, chosen)
        # A fresh install (no version): nothing to migrate.
        self.env.cr.execute(
            "UPDATE referral_program SET welcome_discount_product_id = NULL "
            "WHERE id = %s",
            [self.program.id],
        )
        migration.migrate(self.env.cr, None)
        self.env.invalidate_all()
        self.assertFalse(self.program.welcome_discount_product_id)
