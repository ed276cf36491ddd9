# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from contextlib import contextmanager

from odoo.tests import TransactionCase, new_test_user


class ReferralCommon(TransactionCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env = cls.env(context=dict(cls.env.context, tracking_disable=False))
        cls.company = cls.env.company
        cls.other_company = cls.env["res.company"].create({"name": "Other Co"})
        cls.salesman = new_test_user(
            cls.env,
            login="ref_salesman",
            name="Sally Own",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
            company_ids=[(6, 0, (cls.company | cls.other_company).ids)],
        )
        cls.salesman_2 = new_test_user(
            cls.env,
            login="ref_salesman_2",
            name="Sam Own",
            groups="sales_team.group_sale_salesman,base.group_partner_manager",
        )
        cls.salesman_all = new_test_user(
            cls.env,
            login="ref_salesman_all",
            name="Alice All",
            groups="sales_team.group_sale_salesman_all_leads,base.group_partner_manager",
        )
        cls.sale_manager = new_test_user(
            cls.env,
            login="ref_manager",
            name="Max Manager",
            groups="sales_team.group_sale_manager,base.group_partner_manager",
        )
        cls.program = cls.env.ref("sale_referral_lifecycle.referral_program_default")
        # The program's reward settings as installed, whatever demo data set.
        cls.program.write(
            {
                "reward_type": "percent",
                "reward_percent": 10.0,
                "reward_max_amount": 0.0,
                "yearly_cap_amount": 0.0,
                "reward_trigger": "order_confirmed",
                "approval_required": False,
                "credit_validity_months": 12,
                "referee_discount_percent": 0.0,
                "referee_discount_auto_apply": False,
                "redeem_scope": "renewal",
                "auto_apply_on_renewal": False,
                "credit_tax_mode": "discount",
            }
        )
        # Referral credit booked as on a fresh install with a chart of
        # accounts, whatever the database was installed from.
        cls.program._setup_referral_accounting()
        cls.product = cls.env["product.product"].create(
            {"name": "Annual licence", "type": "service", "list_price": 1200.0}
        )
        cls.sponsor = cls.env["res.partner"].create(
            {
                "name": "Sponsor Corp",
                "is_company": True,
                "user_id": cls.salesman.id,
                "email": "boss@sponsor.example.com",
            }
        )
        cls.sponsor_contact = cls.env["res.partner"].create(
            {"name": "Simone Sponsor", "parent_id": cls.sponsor.id}
        )
        cls._confirm_order(cls.sponsor)
        cls.Referral = cls.env["referral.referral"]

    @classmethod
    def _create_order(cls, partner, **values):
        return cls.env["sale.order"].create(
            dict(
                {
                    "partner_id": partner.id,
                    "order_line": [
                        (0, 0, {"product_id": cls.product.id, "product_uom_qty": 1})
                    ],
                },
                **values,
            )
        )

    @classmethod
    def _confirm_order(cls, partner, **values):
        """A confirmed order of ``partner``, a minute later: the lifecycle
        queue's job ran (stages, follow-ups, the sponsor's reward)."""
        order = cls._create_order(partner, **values)
        order.action_confirm()
        cls._process_lifecycle_queue()
        return order

    @classmethod
    def _process_lifecycle_queue(cls):
        """Run the job that follows the orders' changes of state (woken by a
        trigger within a minute): stages, follow-ups, sponsors' rewards."""
        while cls.env["partner.lifecycle.queue"]._cron_process():
            pass

    @classmethod
    def _create_customer(cls, name, **values):
        return cls.env["res.partner"].create(
            dict({"name": name, "is_company": True}, **values)
        )

    def _refer(self, sponsor=None, **values):
        return self.Referral.create(
            dict(
                {
                    "sponsor_id": (sponsor or self.sponsor).id,
                    "referee_company_name": "Prospect Ltd",
                },
                **values,
            )
        )

    @contextmanager
    def assertRefused(self, exception, regex):
        """Like ``assertRaisesRegex``, in a savepoint rolled back on error:
        what the refused call wrote before raising is undone, as it is for a
        user whose request fails."""
        with self.assertRaises(exception) as catcher:
            yield catcher
        self.assertRegex(str(catcher.exception), regex)


class WalletCommon(ReferralCommon):
    """Referral data plus an approver, a billing user and wallet helpers."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.approver = new_test_user(
            cls.env,
            login="ref_approver",
            name="Paula Approver",
            groups="sales_team.group_sale_manager,"
            "sale_referral_lifecycle.group_referral_reward_approver",
        )
        cls.accountant = new_test_user(
            cls.env,
            login="ref_accountant",
            name="Andy Billing",
            groups="account.group_account_invoice",
        )
        cls.Wallet = cls.env["referral.wallet"]
        cls.Transaction = cls.env["referral.wallet.transaction"]
        cls.currency = cls.company.currency_id

    def _wallet(self, partner=None, company=None):
        return self.Wallet._get_or_create(
            partner or self.sponsor, company or self.company
        )

    def _held(self, lines):
        """Credit the ledger holds for document ``lines`` (what they spend)."""
        held, _debits = self.env["referral.ledger"]._read_held(
            lines.filtered(lambda ln: ln._name == "sale.order.line"),
            lines.filtered(lambda ln: ln._name == "account.move.line"),
        )
        return sum(
            amount for by_wallet in held.values() for amount in by_wallet.values()
        )

    def _reward_referral(self, name, sponsor=None, price=1200.0, **order_values):
        """A referral of ``sponsor`` for the company ``name``, won by its
        first order (one line at ``price``), confirmed, and the lifecycle
        queue's job run after it (the reward is posted there, within a
        minute in production)."""
        referral = self._refer(sponsor=sponsor, referee_company_name=name)
        order = self._create_order(referral.referee_id, **order_values)
        order.order_line.write({"price_unit": price, "tax_id": [(5, 0, 0)]})
        order.action_confirm()
        self._process_lifecycle_queue()
        return referral, order
