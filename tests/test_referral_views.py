# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from lxml import etree

from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralViews(ReferralCommon):
    def test_referrals_menu_opens_on_to_do_for_everyone(self):
        """An administrator, or anyone after an import, sees the referrals
        to handle, not an empty "My Referrals"."""
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        self.assertIn("search_default_to_do", action["context"])
        self.assertNotIn("search_default_my_referrals", action["context"])

    def test_kanban_columns_follow_states_and_show_won_when_empty(self):
        rejected = self._refer()
        rejected.action_reject()
        referral = self._refer(referee_company_name="Still New Ltd")
        groups = self.Referral.web_read_group(
            [("id", "in", (rejected | referral).ids)], ["state"], ["state"]
        )["groups"]
        self.assertEqual(
            [group["state"] for group in groups],
            ["new", "in_progress", "won", "rewarded", "rejected"],
        )

    def test_datetime_fields_are_not_given_the_date_widget(self):
        """The date widget does not apply to datetime fields (they show a
        time): cards and lists show a date with show_time false."""
        views = self.env["ir.ui.view"].search(
            [
                ("model_data_id.module", "=", "sale_referral_lifecycle"),
                ("type", "!=", "qweb"),
            ]
        )
        offenders = []
        for view in views:
            arch = etree.fromstring(view.arch_db)
            model = self.env[view.model]
            for node in arch.iter("field"):
                field = model._fields.get(node.get("name"))
                if (
                    node.get("widget") == "date"
                    and field is not None
                    and field.type == "datetime"
                ):
                    offenders.append(f"{view.name}: {node.get('name')}")
        self.assertFalse(offenders)
