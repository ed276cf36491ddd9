# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""How much credit a document takes: the program's credit per renewal, the
sponsor's own choice (automatic or not, a limit per renewal), the Apply
Referral Credit wizard on quotations (the one of invoices, generalised)."""

from odoo import Command, fields
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tests import Form, new_test_user, tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestWalletRenewalAmounts(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.tax_10 = cls.env["account.tax"].create(
            {"name": "Tax 10", "amount": 10.0, "type_tax_use": "sale"}
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
        # The sponsor bought the plan once: its next plan order renews it.
        cls._plan_order(cls.sponsor).action_confirm()
        cls.program.write(
            {
                "redeem_scope": "renewal",
                "credit_tax_mode": "payment",
                "auto_apply_on_renewal": True,
            }
        )

    @classmethod
    def _plan_order(cls, partner, company=None, **values):
        values = dict(
            {
                "partner_id": partner.id,
                "order_line": [
                    Command.create({"product_id": cls.plan.id, "product_uom_qty": 1})
                ],
            },
            **values,
        )
        if company:
            values["company_id"] = company.id
        return cls.env["sale.order"].create(values)

    def _fund(self, amount, partner=None, company=None):
        return self._wallet(partner, company)._credit(amount, name="Test credit")

    def _other_program(self):
        return self.env["referral.program"]._get_company_program(self.other_company)

    def _credit_lines(self, order):
        return order.order_line.filtered("referral_credit_wallet_id")

    def _wizard(self, order, user=None, amount=None):
        order = order.with_user(user or self.env.user)
        action = order.action_open_referral_credit_wizard()
        form = Form(
            self.env[action["res_model"]]
            .with_user(user or self.env.user)
            .with_context(**action["context"])
        )
        if amount is not None:
            form.amount = amount
        return form.save()

    # ------------------------------------------------------------------
    # Program setting: refused values write nothing
    # ------------------------------------------------------------------

    def test_program_limit_refused_values_write_nothing(self):
        for vals in (
            {"renewal_credit_limit": "percent", "renewal_credit_percent": 0.0},
            {"renewal_credit_limit": "percent", "renewal_credit_percent": 100.01},
            {"renewal_credit_limit": "percent", "renewal_credit_percent": -5.0},
            {"renewal_credit_limit": "percent", "renewal_credit_percent": 250.0},
            {"renewal_credit_limit": "fixed", "renewal_credit_max_amount": 0.0},
            {"renewal_credit_limit": "fixed", "renewal_credit_max_amount": -10.0},
            {"renewal_credit_limit": "all", "renewal_credit_max_amount": -1.0},
            {"renewal_credit_limit": "all", "renewal_credit_percent": -1.0},
            {"renewal_credit_limit": "percent", "renewal_credit_percent": float("nan")},
            {"renewal_credit_limit": "all", "renewal_credit_percent": float("inf")},
        ):
            with self.subTest(vals=vals), self.assertRaises(ValidationError):
                with self.env.cr.savepoint():
                    self.program.write(vals)
                    self.program.flush_recordset()
            self.assertRecordValues(
                self.program,
                [
                    {
                        "renewal_credit_limit": "all",
                        "renewal_credit_percent": 0.0,
                        "renewal_credit_max_amount": 0.0,
                    }
                ],
            )
        # 100 % is allowed: the whole untaxed amount.
        self.program.write(
            {"renewal_credit_limit": "percent", "renewal_credit_percent": 100.0}
        )

    def test_salesperson_cannot_change_the_program_limit(self):
        with self.assertRaises(AccessError):
            self.program.with_user(self.salesman).write(
                {"renewal_credit_limit": "fixed", "renewal_credit_max_amount": 5.0}
            )
        self.assertEqual(self.program.renewal_credit_limit, "all")

    # ------------------------------------------------------------------
    # Automatic application on renewal quotations
    # ------------------------------------------------------------------

    def test_auto_apply_all_available_by_default(self):
        self._fund(300.0)
        renewal = self._plan_order(self.sponsor)
        self.assertEqual(renewal.referral_credit_amount, 300.0)

    def test_auto_apply_capped_by_percent_of_untaxed_amount(self):
        self.program.write(
            {"renewal_credit_limit": "percent", "renewal_credit_percent": 10.0}
        )
        self._fund(300.0)
        renewal = self._plan_order(self.sponsor)
        # 10 % of 1,000 untaxed (not of the 1,100 total).
        self.assertEqual(renewal.referral_credit_amount, 100.0)
        self.assertEqual(renewal.amount_total, 1000.0)

    def test_auto_apply_capped_by_fixed_amount(self):
        self.program.write(
            {"renewal_credit_limit": "fixed", "renewal_credit_max_amount": 75.0}
        )
        self._fund(300.0)
        self.assertEqual(self._plan_order(self.sponsor).referral_credit_amount, 75.0)

    def test_auto_apply_takes_the_smallest_limit(self):
        """Program cap, sponsor cap, balance and goods: the smallest wins,
        whichever it is."""
        wallet = self._wallet()
        cases = [
            # (program fixed cap, sponsor cap, balance, expected)
            (200.0, 150.0, 500.0, 150.0),  # the sponsor's
            (120.0, 150.0, 500.0, 120.0),  # the program's
            (200.0, 150.0, 90.0, 90.0),  # the balance
            (5000.0, 0.0, 5000.0, 1100.0),  # the goods (sponsor: no limit)
        ]
        for program_cap, sponsor_cap, balance, expected in cases:
            with self.subTest(
                program=program_cap, sponsor=sponsor_cap, balance=balance
            ):
                self.program.write(
                    {
                        "renewal_credit_limit": "fixed",
                        "renewal_credit_max_amount": program_cap,
                    }
                )
                wallet.write({"renewal_max_amount": sponsor_cap})
                missing = balance - wallet.balance
                if missing > 0:
                    wallet._credit(missing, name="Top up")
                elif missing < 0:
                    wallet._debit(-missing, name="Draw down")
                renewal = self._plan_order(self.sponsor)
                self.assertEqual(renewal.referral_credit_amount, expected)
                renewal.unlink()

    def test_sponsor_declines_automatic_application(self):
        self._fund(300.0)
        self._wallet().renewal_auto_apply = False
        renewal = self._plan_order(self.sponsor)
        self.assertFalse(self._credit_lines(renewal))
        # A line added later does not apply it either.
        renewal.write({"order_line": [Command.create({"product_id": self.plan.id})]})
        self.assertFalse(self._credit_lines(renewal))
        # The salesperson may still apply it on the sponsor's request.
        renewal.with_user(self.salesman).action_apply_referral_credit()
        self.assertEqual(renewal.referral_credit_amount, 300.0)

    def test_confirmation_spends_exactly_what_was_applied(self):
        self.program.write(
            {"renewal_credit_limit": "percent", "renewal_credit_percent": 5.0}
        )
        self._fund(300.0)
        renewal = self._plan_order(self.sponsor)
        renewal.action_confirm()
        self.assertEqual(self._wallet().balance, 250.0)

    def test_limits_converted_into_the_renewals_currency(self):
        """The program's fixed amount, the sponsor's limit and the balance
        are in the company currency; the renewal's in its own."""
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
                # The renewal's date (now, in UTC), whatever the time zone.
                "name": fields.Date.today(),
                "rate": 2.0 * self.currency.rate,
            }
        )
        pricelist = self.env["product.pricelist"].create(
            {"name": "Foreign", "currency_id": foreign.id}
        )
        self.program.write(
            {"renewal_credit_limit": "fixed", "renewal_credit_max_amount": 80.0}
        )
        self._fund(300.0)
        self._wallet().renewal_max_amount = 50.0
        renewal = self._plan_order(self.sponsor, pricelist_id=pricelist.id)
        self.assertEqual(renewal.currency_id, foreign)
        # min(80 -> 160, 50 -> 100, 300 -> 600, the goods): 100.
        self.assertEqual(renewal.referral_credit_amount, 100.0)
        self._wallet().renewal_max_amount = 0.0
        renewal.order_line.filtered("referral_credit_wallet_id").unlink()
        wizard = self._wizard(renewal)
        self.assertRecordValues(
            wizard, [{"balance": 600.0, "allowed_amount": 160.0, "amount": 160.0}]
        )

    def test_salesperson_sees_the_sponsors_choice_on_the_wallet(self):
        wallet = self._fund(10.0).wallet_id
        wallet.write({"renewal_auto_apply": False, "renewal_max_amount": 25.0})
        arch = (
            self.env["referral.wallet"]
            .with_user(self.salesman)
            .get_views([(False, "form")])["views"]["form"]["arch"]
        )
        self.assertIn('name="renewal_auto_apply"', arch)
        self.assertIn('name="renewal_max_amount"', arch)
        self.assertRecordValues(
            wallet.with_user(self.salesman),
            [{"renewal_auto_apply": False, "renewal_max_amount": 25.0}],
        )

    def test_sponsor_limit_is_per_company(self):
        """The sponsor's choice is stored on its wallet of one company: its
        wallet of another company keeps its own."""
        self.env.user.company_ids |= self.other_company
        # A company gets its program when it is created.
        self._other_program().write(
            {
                "credit_tax_mode": "payment",
                "redeem_scope": "renewal",
                "auto_apply_on_renewal": True,
            }
        )
        self._plan_order(self.sponsor, company=self.other_company).action_confirm()
        self._fund(300.0)
        self._fund(300.0, company=self.other_company)
        self._wallet().renewal_max_amount = 40.0
        here = self._plan_order(self.sponsor)
        there = self._plan_order(self.sponsor, company=self.other_company)
        self.assertEqual(here.referral_credit_amount, 40.0)
        self.assertEqual(there.referral_credit_amount, 300.0)

    # ------------------------------------------------------------------
    # The wizard on quotations
    # ------------------------------------------------------------------

    def test_wizard_proposes_what_the_program_allows(self):
        self.program.write(
            {
                "auto_apply_on_renewal": False,
                "renewal_credit_limit": "percent",
                "renewal_credit_percent": 25.0,
            }
        )
        self._fund(400.0)
        order = self._plan_order(self.sponsor)
        wizard = self._wizard(order)
        self.assertRecordValues(
            wizard,
            [
                {
                    "order_id": order.id,
                    "balance": 400.0,
                    "amount_due": 1100.0,
                    "allowed_amount": 250.0,
                    "amount": 250.0,
                }
            ],
        )
        wizard.action_apply()
        self.assertEqual(order.referral_credit_amount, 250.0)
        # Applying again replaces the credit, within balance and goods.
        self._wizard(order, amount=400.0).action_apply()
        self.assertEqual(len(self._credit_lines(order)), 1)
        self.assertEqual(order.referral_credit_amount, 400.0)

    def test_wizard_refuses_more_than_balance_or_goods_and_non_positive(self):
        self.program.auto_apply_on_renewal = False
        self._fund(100.0)
        order = self._plan_order(self.sponsor)
        for amount, message in (
            (100.01, "apply at most"),
            (0.0, "positive amount"),
            (-50.0, "positive amount"),
        ):
            with self.subTest(amount=amount):
                wizard = self._wizard(order)
                wizard.amount = amount
                with self.assertRefused(UserError, message):
                    wizard.action_apply()
        self._fund(5000.0)
        wizard = self._wizard(order, amount=1100.01)
        with self.assertRefused(UserError, "cannot exceed the amount due"):
            wizard.action_apply()
        self.assertFalse(self._credit_lines(order))
        # The goods exactly: the order is free.
        self._wizard(order, amount=1100.0).action_apply()
        self.assertEqual(order.amount_total, 0.0)

    def test_wizard_never_spends_another_customers_wallet(self):
        self.program.auto_apply_on_renewal = False
        self._fund(100.0)
        other = self._create_customer("Other Customer Ltd")
        other_wallet = self._fund(900.0, partner=other).wallet_id
        order = self._plan_order(self.sponsor)
        Wizard = self.env["referral.credit.apply.wizard"].with_user(self.salesman)
        wizard = Wizard.with_context(default_order_id=order.id).create(
            {"wallet_id": other_wallet.id, "amount": 100.0}
        )
        self.assertEqual(wizard.wallet_id, self._wallet())
        wizard.action_apply()
        self.assertEqual(
            self._credit_lines(order).referral_credit_wallet_id, self._wallet()
        )
        # More than its own wallet holds, whatever the other wallet has.
        wizard = Wizard.with_context(default_order_id=order.id).create(
            {"amount": 500.0}
        )
        with self.assertRefused(UserError, "apply at most"):
            wizard.action_apply()

    def test_wizard_refused_on_confirmed_order_and_outside_scope(self):
        self.program.auto_apply_on_renewal = False
        self._fund(100.0)
        not_renewal = self._create_order(self.sponsor)
        with self.assertRefused(UserError, "renewals only"):
            not_renewal.action_open_referral_credit_wizard()
        order = self._plan_order(self.sponsor)
        wizard = self._wizard(order)
        order.action_confirm()
        with self.assertRefused(UserError, "quotations only"):
            wizard.action_apply()
        Wizard = self.env["referral.credit.apply.wizard"]
        with self.assertRefused(UserError, "one quotation or one invoice"):
            Wizard.create({"amount": 1.0}).action_apply()

    def test_wizard_salesperson_of_another_customer_refused(self):
        self.program.auto_apply_on_renewal = False
        self._fund(100.0)
        order = self._plan_order(self.sponsor, user_id=self.salesman.id)
        with self.assertRaises(AccessError):
            self._wizard(order, user=self.salesman_2)
        Wizard = self.env["referral.credit.apply.wizard"].with_user(self.salesman_2)
        with self.assertRaises(AccessError):
            Wizard.create({"order_id": order.id, "amount": 10.0}).action_apply()
        self.assertFalse(self._credit_lines(order))
        # Its own salesperson applies it.
        self._wizard(order, user=self.salesman).action_apply()
        self.assertEqual(order.referral_credit_amount, 100.0)

    def test_wizard_in_another_company_uses_that_companys_wallet(self):
        self.env.user.company_ids |= self.other_company
        self._other_program().write(
            {
                "credit_tax_mode": "payment",
                "auto_apply_on_renewal": False,
                "renewal_credit_limit": "fixed",
                "renewal_credit_max_amount": 30.0,
            }
        )
        self._plan_order(self.sponsor, company=self.other_company).action_confirm()
        self._fund(500.0)
        self._fund(80.0, company=self.other_company)
        order = self._plan_order(self.sponsor, company=self.other_company)
        order.order_line.filtered("referral_credit_wallet_id").unlink()
        wizard = self._wizard(order)
        self.assertEqual(wizard.wallet_id, self._wallet(company=self.other_company))
        self.assertRecordValues(
            wizard, [{"balance": 80.0, "allowed_amount": 30.0, "amount": 30.0}]
        )
        with self.assertRefused(UserError, "apply at most"):
            self._wizard(order, amount=80.01).action_apply()

    def test_wizard_on_invoice_proposes_the_program_limit_less_order_credit(self):
        self.program.write(
            {
                "redeem_scope": "any",
                "auto_apply_on_renewal": False,
                "renewal_credit_limit": "fixed",
                "renewal_credit_max_amount": 150.0,
            }
        )
        self._fund(500.0)
        order = self._plan_order(self.sponsor)
        self._wizard(order, amount=100.0).action_apply()
        order.action_confirm()
        invoice = order._create_invoices()
        action = invoice.action_open_referral_credit_wizard()
        wizard = Form(
            self.env[action["res_model"]].with_context(**action["context"])
        ).save()
        # 150 per renewal, 100 of them carried by the order already.
        self.assertRecordValues(
            wizard, [{"balance": 400.0, "allowed_amount": 50.0, "amount": 50.0}]
        )

    def test_fit_keeps_the_amount_chosen_within_what_is_left(self):
        """Fit Referral Credit lowers a quotation's credit to what the wallet
        still holds; it does not apply the program's limit again to an
        amount the salesperson chose."""
        self.program.write(
            {
                "auto_apply_on_renewal": False,
                "renewal_credit_limit": "fixed",
                "renewal_credit_max_amount": 50.0,
            }
        )
        wallet = self._fund(500.0).wallet_id
        order = self._plan_order(self.sponsor)
        self._wizard(order, amount=400.0).action_apply()
        wallet._debit(200.0, name="Spent elsewhere")
        self.assertEqual(order.referral_credit_uncovered, 100.0)
        order.action_fit_referral_credit()
        self.assertEqual(order.referral_credit_amount, 300.0)

    def test_wizard_query_count(self):
        self.program.auto_apply_on_renewal = False
        self._fund(100.0)
        order = self._plan_order(self.sponsor)
        wizard = self._wizard(order, amount=60.0)
        self.env.flush_all()
        self.env.invalidate_all()
        # 37, + 1: the wallet locked as its credit lines reference it.
        with self.assertQueryCount(__system__=38):
            wizard.action_apply()
            self.env.flush_all()

    # ------------------------------------------------------------------
    # The sponsor's choice in the back office
    # ------------------------------------------------------------------

    def test_salesperson_writes_the_choice_of_wallets_they_see_only(self):
        wallet = self._fund(100.0).wallet_id
        wallet.with_user(self.salesman).write(
            {"renewal_auto_apply": False, "renewal_max_amount": 20.0}
        )
        self.assertRecordValues(
            wallet, [{"renewal_auto_apply": False, "renewal_max_amount": 20.0}]
        )
        # A wallet of a customer the salesperson does not manage.
        hidden = self._create_customer("Hidden Ltd", user_id=self.salesman_2.id)
        hidden_wallet = self._fund(100.0, partner=hidden).wallet_id
        with self.assertRaises(AccessError):
            hidden_wallet.with_user(self.salesman).write({"renewal_max_amount": 1.0})
        # A wallet of a company the salesperson is not in.
        outsider = new_test_user(
            self.env,
            login="ref_outsider",
            groups="sales_team.group_sale_salesman_all_leads",
            company_id=self.other_company.id,
            company_ids=[Command.set(self.other_company.ids)],
        )
        with self.assertRaises(AccessError):
            wallet.with_user(outsider).write({"renewal_auto_apply": True})
        # Nothing else of a wallet, nor a negative limit.
        with self.assertRaises(AccessError):
            wallet.with_user(self.salesman).write(
                {"renewal_max_amount": 5.0, "partner_id": hidden.id}
            )
        with self.assertRaises(ValidationError), self.env.cr.savepoint():
            wallet.with_user(self.salesman).write({"renewal_max_amount": -5.0})
            wallet.flush_recordset()
        # Billing users read the choice, they do not change it.
        with self.assertRaises(AccessError):
            wallet.with_user(self.accountant).write({"renewal_max_amount": 1.0})
        self.assertRecordValues(
            wallet | hidden_wallet,
            [
                {"renewal_auto_apply": False, "renewal_max_amount": 20.0},
                {"renewal_auto_apply": True, "renewal_max_amount": 0.0},
            ],
        )
        self.assertEqual(wallet.with_user(self.accountant).renewal_max_amount, 20.0)
