# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import datetime

from freezegun import freeze_time

from odoo import Command, fields
from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import WalletCommon

MARCH = datetime(2026, 3, 10, 12)
APRIL = datetime(2026, 4, 10, 12)


@tagged("post_install", "-at_install")
class TestReferralProgramKpi(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Kpi = cls.env["referral.program.kpi"]
        cls.Prospect = cls.env["referral.prospect.kpi"]
        cls.Credit = cls.env["referral.credit.report"]
        cls.other_program = cls.env["referral.program"].search(
            [("company_id", "=", cls.other_company.id)]
        )

    # ------------------------------------------------------------ helpers

    def _new_customer(self, name, date_order, user, referred=False, company=None):
        """A company whose first order, confirmed, is dated ``date_order``,
        sold by ``user``; brought by a referral of the sponsor when
        ``referred``."""
        company = company or self.company
        if referred:
            partner = self._refer(
                referee_company_name=name, company_id=company.id
            ).referee_id
        else:
            partner = self._create_customer(name)
        order = (
            self.env["sale.order"]
            .with_company(company)
            .create(
                {
                    "partner_id": partner.id,
                    "company_id": company.id,
                    "user_id": user.id,
                    "order_line": [Command.create({"product_id": self.product.id})],
                }
            )
        )
        order.action_confirm()
        # The sponsor's reward is posted by the lifecycle queue's job.
        self._process_lifecycle_queue()
        order.date_order = date_order
        return partner

    def _kpi_groups(self, model, partners, measures, groupby, **kwargs):
        return model._read_group(
            [("partner_id", "in", partners.ids)], groupby, measures, **kwargs
        )

    # ------------------------------------------------------------ referral share

    def test_referral_share_per_month_and_salesperson(self):
        """One referred of four new customers in March is 25%; per
        salesperson the share is of their own new customers; a second order
        does not make a customer new again."""
        partners = (
            self._new_customer("Alpha", MARCH, self.salesman)
            | self._new_customer("Beta", MARCH, self.salesman)
            | self._new_customer("Gamma", MARCH, self.salesman_2)
            | self._new_customer("Delta", MARCH, self.salesman, referred=True)
            | self._new_customer("Epsilon", APRIL, self.salesman_2)
        )
        second = self._confirm_order(partners[0], user_id=self.salesman.id)
        second.date_order = APRIL
        by_month = self._kpi_groups(
            self.Kpi,
            partners,
            [
                "customer_count:sum",
                "referred_count:sum",
                "referral_share:avg",
                "target_referral_share:avg",
            ],
            ["date:month"],
            order="date:month",
        )
        self.assertEqual(
            [
                (count, referred, share, target)
                for _m, count, referred, share, target in by_month
            ],
            [(4, 1, 25.0, 25.0), (1, 0, 0.0, 25.0)],
        )
        by_user = {
            user: (count, share)
            for user, count, share in self._kpi_groups(
                self.Kpi,
                partners,
                ["customer_count:sum", "referral_share:avg"],
                ["user_id"],
            )
        }
        self.assertEqual(by_user[self.salesman][0], 3)
        self.assertAlmostEqual(by_user[self.salesman][1], 100 / 3, places=2)
        self.assertEqual(by_user[self.salesman_2], (2, 0.0))
        delta = self.Kpi.search([("partner_id", "=", partners[3].id)])
        self.assertRecordValues(
            delta,
            [
                {
                    "is_referred": True,
                    "sponsor_id": self.sponsor.id,
                    "user_id": self.salesman.id,
                    "company_id": self.company.id,
                    "date": fields.Date.to_date("2026-03-10"),
                }
            ],
        )
        self.assertEqual(delta.referral_id.referee_id, partners[3])
        self.program.target_referral_share = 30.0
        [(target,)] = self._kpi_groups(
            self.Kpi, partners, ["target_referral_share:avg"], []
        )
        self.assertEqual(target, 30.0)

    def test_referral_after_the_first_order_does_not_make_it_referred(self):
        """A customer referred once it had ordered (the program accepts
        existing customers) did not come through the referral."""
        self.program.allow_customer_referee = True
        partner = self._new_customer("Old Hand", MARCH, self.salesman)
        self._refer(referee_id=partner.id)
        row = self.Kpi.search([("partner_id", "=", partner.id)])
        self.assertRecordValues(
            row, [{"is_referred": False, "sponsor_id": False, "referral_share": 0.0}]
        )

    def test_days_to_first_order_from_the_referral_or_the_first_quotation(self):
        referral = self._refer(
            referee_company_name="Referred Ltd", date_referral=datetime(2026, 3, 1, 9)
        )
        order = self._confirm_order(referral.referee_id)
        order.date_order = datetime(2026, 3, 11, 15)
        cold = self._create_customer("Cold Ltd")
        self._create_order(cold, date_order=datetime(2026, 2, 1, 10))
        cold_order = self._confirm_order(cold)
        cold_order.date_order = datetime(2026, 2, 21, 10)
        rows = self.Kpi.search(
            [("partner_id", "in", (referral.referee_id | cold).ids)],
            order="date",
        )
        self.assertRecordValues(
            rows,
            [
                {
                    "partner_id": cold.id,
                    "days_to_first_order": 20,
                    "is_referred": False,
                },
                {
                    "partner_id": referral.referee_id.id,
                    "days_to_first_order": 10,
                    "is_referred": True,
                },
            ],
        )
        [(days,)] = self._kpi_groups(
            self.Kpi, rows.partner_id, ["days_to_first_order:avg"], []
        )
        self.assertEqual(days, 15)

    def test_top_sponsors(self):
        second_sponsor = self._create_customer("Second Sponsor")
        self._confirm_order(second_sponsor)
        referrals = (
            self._reward_referral("One Ltd")[0]
            | self._reward_referral("Two Ltd")[0]
            | self._reward_referral("Three Ltd", sponsor=second_sponsor)[0]
        )
        groups = self.Kpi._read_group(
            [
                ("is_referred", "=", True),
                ("partner_id", "in", referrals.referee_id.ids),
            ],
            ["sponsor_id"],
            ["referred_count:sum"],
            order="referred_count:sum desc",
        )
        self.assertEqual(groups, [(self.sponsor, 2), (second_sponsor, 1)])

    # ------------------------------------------------------------ conversion

    def test_conversion_of_referred_prospects_against_the_others(self):
        """Half the referred prospects ordered, a quarter of the others: the
        referred ones convert twice as well."""
        won, _order = self._reward_referral("Won Ltd")
        waiting = self._refer(referee_company_name="Waiting Ltd")
        lost = self._refer(referee_company_name="Lost Ltd")
        lost.action_mark_lost()
        rejected = self._refer(referee_company_name="Rejected Ltd")
        rejected.action_reject()
        others = self.env["res.partner"]
        for index in range(4):
            partner = self._create_customer(f"Cold {index}")
            if index:
                self._create_order(partner)
            else:
                self._confirm_order(partner)
            others |= partner
        prospects = (won | waiting | lost | rejected).referee_id | others
        groups = dict(
            (referred, (count, converted, rate))
            for referred, count, converted, rate in self._kpi_groups(
                self.Prospect,
                prospects,
                ["prospect_count:sum", "converted_count:sum", "conversion_rate:avg"],
                ["is_referred"],
            )
        )
        self.assertEqual(groups[True][:2], (3, 1))
        self.assertAlmostEqual(groups[True][2], 100 / 3, places=2)
        self.assertEqual(groups[False], (4, 1, 25.0))
        self.assertFalse(
            self.Prospect.search([("partner_id", "=", rejected.referee_id.id)])
        )

    # ------------------------------------------------------------ credit

    def test_credit_earned_spent_expired_outstanding(self):
        """After a reward, a spending order and an expiry, the report
        matches the ledger: earned - spent - expired = outstanding = the
        balance."""
        self.program.write({"redeem_scope": "any", "credit_tax_mode": "payment"})
        self._reward_referral("Rewarded Ltd", price=1000.0)
        item = self.env["product.product"].create(
            {
                "name": "Consulting",
                "type": "service",
                "list_price": 30.0,
                "taxes_id": [Command.clear()],
            }
        )
        spending = self.env["sale.order"].create(
            {
                "partner_id": self.sponsor.id,
                "order_line": [Command.create({"product_id": item.id})],
            }
        )
        spending.action_apply_referral_credit()
        spending.action_confirm()
        wallet = self._wallet()
        yesterday = fields.Date.subtract(fields.Date.context_today(wallet), days=1)
        wallet._credit(50.0, name="Goodwill", expiry_date=yesterday)
        self.Transaction._cron_expire_credits()
        self.env.flush_all()
        [(earned, spent, expired, outstanding)] = self.Credit._read_group(
            [("wallet_id", "=", wallet.id)],
            [],
            [
                "earned_amount:sum",
                "spent_amount:sum",
                "expired_amount:sum",
                "outstanding_amount:sum",
            ],
        )
        self.assertEqual((earned, spent, expired), (150.0, 30.0, 50.0))
        self.assertEqual(outstanding, 70.0)
        wallet.invalidate_recordset()
        self.assertEqual(wallet.balance, outstanding)
        by_company = self.Credit._read_group(
            [("wallet_id", "=", wallet.id)], ["company_id", "date:month"], ["__count"]
        )
        self.assertEqual([company for company, _m, _c in by_company], [self.company])

    def test_revoked_reward_lowers_the_credit_earned(self):
        referral, _order = self._reward_referral("Revoked Ltd", price=1000.0)
        referral.transaction_ids.with_user(self.approver).action_reverse()
        [(earned, outstanding)] = self.Credit._read_group(
            [("referral_id", "=", referral.id)],
            [],
            ["earned_amount:sum", "outstanding_amount:sum"],
        )
        self.assertEqual((earned, outstanding), (0.0, 0.0))

    # ------------------------------------------------------------ companies, access

    def test_rows_per_company_and_isolation(self):
        """A contact shared by two companies is a new customer of each; a
        user of one company reads only its rows."""
        shared = self._create_customer("Shared Ltd")
        self._confirm_order(shared, user_id=self.salesman.id)
        self.env["sale.order"].with_company(self.other_company).create(
            {
                "partner_id": shared.id,
                "company_id": self.other_company.id,
                "user_id": self.salesman.id,
                "order_line": [Command.create({"product_id": self.product.id})],
            }
        ).action_confirm()
        rows = self.Kpi.search([("partner_id", "=", shared.id)])
        self.assertEqual(rows.company_id, self.company | self.other_company)
        self.assertEqual(len(rows), 2)
        # Alice sees all documents, of the main company only.
        self.assertEqual(
            self.Kpi.with_user(self.salesman_all)
            .search([("partner_id", "=", shared.id)])
            .company_id,
            self.company,
        )
        # Sally works in both companies, when both are allowed.
        visible = (
            self.Kpi.with_user(self.salesman)
            .with_context(allowed_company_ids=(self.company | self.other_company).ids)
            .search([("partner_id", "=", shared.id)])
        )
        self.assertEqual(len(visible), 2)
        prospects = self.Prospect.search([("partner_id", "=", shared.id)])
        self.assertEqual(prospects.company_id, self.company | self.other_company)

    def test_salesperson_reads_own_rows_only(self):
        mine = self._new_customer("Mine Ltd", MARCH, self.salesman)
        theirs = self._new_customer("Theirs Ltd", MARCH, self.salesman_2)
        for model in (self.Kpi, self.Prospect):
            rows = model.with_user(self.salesman).search(
                [("partner_id", "in", (mine | theirs).ids)]
            )
            self.assertEqual(rows.partner_id, mine)
        self.assertEqual(
            len(
                self.Kpi.with_user(self.sale_manager).search(
                    [("partner_id", "in", (mine | theirs).ids)]
                )
            ),
            2,
        )

    def test_menu_for_managers_not_for_plain_users(self):
        plain = self.env["res.users"].create(
            {
                "name": "Plain User",
                "login": "kpi_plain",
                "groups_id": [Command.set(self.env.ref("base.group_user").ids)],
            }
        )
        root = self.env.ref("sale_referral_lifecycle.menu_referral_analysis")
        kpi_menus = root.child_id.filtered(
            lambda m: m.action.sudo().res_model
            in ("referral.program", "referral.program.kpi", "referral.prospect.kpi")
        )
        self.assertEqual(len(kpi_menus), 4)
        manager_menus = (
            self.env["ir.ui.menu"].with_user(self.sale_manager)._visible_menu_ids()
        )
        self.assertTrue(set((root | kpi_menus).ids) <= manager_menus)
        self.assertNotIn(
            root.id, self.env["ir.ui.menu"].with_user(plain)._visible_menu_ids()
        )
        salesman_menus = (
            self.env["ir.ui.menu"].with_user(self.salesman)._visible_menu_ids()
        )
        self.assertIn(
            self.env.ref("sale_referral_lifecycle.menu_referral_program_kpi").id,
            salesman_menus,
        )
        self.assertNotIn(
            self.env.ref("sale_referral_lifecycle.menu_referral_program_dashboard").id,
            salesman_menus,
        )
        self.assertIn(
            self.env.ref(
                "sale_referral_lifecycle.menu_referral_credit_report_invoicing"
            ).id,
            self.env["ir.ui.menu"].with_user(self.accountant)._visible_menu_ids(),
        )

    def test_actions_and_views_load(self):
        for xmlid in (
            "action_referral_program_kpi",
            "action_referral_program_kpi_sponsors",
            "action_referral_prospect_kpi",
            "action_referral_credit_report",
            "action_referral_program_dashboard",
        ):
            action = (
                self.env["ir.actions.act_window"]
                .with_user(self.sale_manager)
                ._for_xml_id(f"sale_referral_lifecycle.{xmlid}")
            )
            model = self.env[action["res_model"]].with_user(self.sale_manager)
            views = model.get_views(
                [*action["views"], (False, "search")], {"load_filters": True}
            )
            self.assertEqual(
                set(views["views"]),
                {view_type for _id, view_type in action["views"]} | {"search"},
            )
        kanban = self.env.ref(
            "sale_referral_lifecycle.view_referral_program_dashboard_kanban"
        )
        arch = self.env["referral.program"].get_views([(kanban.id, "kanban")])["views"][
            "kanban"
        ]["arch"]
        self.assertIn("kpi_referral_share", arch)
        self.assertIn("target_referral_share", arch)

    # ------------------------------------------------------------ program, dashboard

    def test_target_share_is_a_percentage(self):
        with self.assertRefused(ValidationError, "between 0 and 100"):
            self.program.target_referral_share = 120.0
        self.program.invalidate_recordset()
        self.assertEqual(self.program.target_referral_share, 25.0)

    def test_dashboard_reads_the_program_company(self):
        """The card of the other company's program: its new customers, its
        referral share against its target, its conversion and credit, in a
        few queries whatever the number of programs."""
        self.other_program.write(
            {"sponsor_policy": "any", "target_referral_share": 20.0}
        )
        company = self.other_company
        # One instant: the referral is not dated a second after the order
        # dated "now" before it (a referral after the first order did not
        # bring the customer).
        with freeze_time(fields.Datetime.now()):
            self._new_customer(
                "Referred Co", fields.Datetime.now(), self.salesman, True, company
            )
        for name in ("Plain A", "Plain B", "Plain C"):
            self._new_customer(
                name, fields.Datetime.now(), self.salesman, False, company
            )
        for name in ("Cold A", "Cold B", "Cold C", "Cold D"):
            self.env["sale.order"].with_company(company).create(
                {
                    "partner_id": self._create_customer(name).id,
                    "company_id": company.id,
                    "order_line": [Command.create({"product_id": self.product.id})],
                }
            )
        programs = (self.program | self.other_program).with_context(
            allowed_company_ids=(self.company | company).ids
        )
        self.env.flush_all()
        programs.invalidate_recordset()
        # One grouped read per figure (share, months, top sponsors and their
        # names, conversion, credit) for all the cards.
        with self.assertQueryCount(8):
            programs.mapped("kpi_referral_share")
        self.assertRecordValues(
            programs.filtered(lambda p: p.company_id == company),
            [
                {
                    "kpi_new_customer_count": 4,
                    "kpi_referred_customer_count": 1,
                    "kpi_referral_share": 25.0,
                    "target_referral_share": 20.0,
                    "kpi_referred_conversion": 100.0,
                    "kpi_credit_outstanding": 120.0,
                }
            ],
        )
        card = programs.filtered(lambda p: p.company_id == company)
        self.assertAlmostEqual(card.kpi_other_conversion, 300 / 7, places=2)
        self.assertAlmostEqual(card.kpi_conversion_ratio, 7 / 3, places=2)
        # Days to the first order: unit and period said on the card; here
        # every first order is dated today, as is every first contact.
        self.assertEqual(card.kpi_days_to_first_order, 0.0)
        # The referral share of each of the twelve months, against target.
        chart = card.kpi_share_months
        self.assertEqual(len(chart["months"]), 12)
        self.assertEqual(chart["target"], 20.0)
        this_month = chart["months"][-1]
        self.assertRecordValues(card, [{"kpi_referral_share": this_month["share"]}])
        self.assertTrue(this_month["reached"])
        self.assertEqual(this_month["height"], 100.0)
        self.assertEqual(chart["target_height"], 80.0)
        self.assertIn("1 of 4 new customers referred (25.0%)", this_month["title"])
        self.assertTrue(all(month["empty"] for month in chart["months"][:-1]))
        self.assertEqual(
            card.kpi_top_sponsors,
            [{"id": self.sponsor.id, "name": self.sponsor.display_name, "count": 1}],
        )
        # Each block opens its report on the card's company and months.
        since = fields.Date.to_string(card._get_kpi_period_start())
        action = programs[1].action_open_kpi_customers()
        self.assertEqual(
            action["domain"], [("company_id", "=", company.id), ("date", ">=", since)]
        )
        sponsors = card.action_open_kpi_sponsors()
        self.assertEqual(
            sponsors["domain"],
            [
                ("company_id", "=", company.id),
                ("is_referred", "=", True),
                ("date", ">=", since),
            ],
        )
        days = card.action_open_kpi_days()
        self.assertEqual(days["views"][0][1], "pivot")
        self.assertEqual(days["context"]["pivot_row_groupby"], ["acquisition_channel"])
        credit = card.action_open_kpi_credit()
        self.assertEqual(credit["domain"], [("company_id", "=", company.id)])
