# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime

from lxml import etree

from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestLifecycleReports(ReferralCommon):
    def _arch(self, xmlid):
        return etree.fromstring(self.env.ref(xmlid).arch_db)

    def test_salespeople_reach_the_analysis_menu(self):
        """Sales > Reporting is for managers: Referrals > Reporting gives a
        salesperson (own documents) the reports, on what they may read."""
        visible = self.env["ir.ui.menu"].with_user(self.salesman)._visible_menu_ids()
        for xmlid in (
            "menu_referral_analysis_referrals",
            "menu_partner_lifecycle_history",
            "menu_partner_lifecycle_conversion",
            "menu_referral_credit_report",
        ):
            self.assertIn(self.env.ref(f"sale_referral_lifecycle.{xmlid}").id, visible)
        mine = self._refer()
        theirs = self._refer(
            sponsor=self.sponsor,
            referee_company_name="Theirs Ltd",
            user_id=self.salesman_2.id,
        )
        groups = (
            self.env["referral.referral"]
            .with_user(self.salesman)
            ._read_group([("id", "in", (mine | theirs).ids)], ["state"], ["__count"])
        )
        self.assertEqual(groups, [("new", 1)])
        for model, groupby in (
            ("partner.lifecycle.history", "date:month"),
            ("res.partner", "first_contact_date:month"),
        ):
            self.env[model].with_user(self.salesman).read_group([], [], [groupby])

    def test_conversion_by_first_contact_channel_and_month(self):
        """The rate and the days to Client of the contacts first met through
        a channel in a month; days counted on converted contacts only."""
        fair = self.env["utm.source"].create({"name": "Autumn fair"})
        partners = self.env["res.partner"]
        for name, order_day in (("Quick", 15), ("Slow", 25), ("Never", None)):
            partner = self._create_customer(
                f"{name} Ltd",
                first_contact_date=date(2026, 10, 5),
                first_contact_source_id=fair.id,
            )
            if order_day:
                order = self._confirm_order(partner)
                order.date_order = datetime(2026, 10, order_day, 12)
            partners |= partner
        partners._lifecycle_recompute()
        [group] = self.env["res.partner"].read_group(
            [("id", "in", partners.ids)],
            ["lifecycle_converted:avg", "lifecycle_days_to_client:avg"],
            ["first_contact_source_id", "first_contact_date:month"],
            lazy=False,
        )
        self.assertEqual(group["first_contact_source_id"][0], fair.id)
        self.assertAlmostEqual(group["lifecycle_converted"], 200 / 3, places=2)
        self.assertEqual(group["lifecycle_days_to_client"], 15)
        pivot = self._arch(
            "sale_referral_lifecycle.view_partner_lifecycle_conversion_pivot"
        )
        self.assertEqual(
            [(f.get("name"), f.get("type")) for f in pivot.iter("field")][:2],
            [("first_contact_source_id", "row"), ("first_contact_date", "col")],
        )

    def test_lifecycle_card_counts_orders_without_a_wrong_plural(self):
        arch = etree.tostring(
            self._arch("sale_referral_lifecycle.view_partner_kanban_lifecycle"),
            encoding="unicode",
        )
        self.assertNotIn("<span>orders</span>", arch)
        self.assertIn("<span>Orders:</span>", arch)

    def test_stage_list_columns_have_short_distinct_labels(self):
        Stage = self.env["partner.lifecycle.stage"]
        arch = self._arch("sale_referral_lifecycle.view_partner_lifecycle_stage_list")
        labels = [
            node.get("string") or Stage._fields[node.get("name")].string
            for node in arch.iter("field")
            if not node.get("column_invisible") and node.get("widget") != "handle"
        ]
        self.assertFalse([label for label in labels if label.startswith("Minimum")])
        self.assertEqual(len(labels), len(set(labels)))
