# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime

from freezegun import freeze_time

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged

from .followup_common import FollowupCommon


@tagged("post_install", "-at_install")
class TestFollowupUi(FollowupCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.renewal = cls._rule(
            "subscription_end",
            [("Renewal call", -10, cls.partner_plan, None)],
            name="Renewal",
            delay_type="calendar",
        )
        cls.customer.subscription_end_date = date(2026, 12, 10)
        cls.other_customer = cls._create_customer(
            "Sam's Customer",
            user_id=cls.salesman_2.id,
            subscription_end_date=date(2026, 12, 10),
        )
        cls.campaign = cls._rule(
            "campaign",
            [
                ("Invitation", 0, cls.partner_plan, None),
                ("Campaign chase +15", 15, cls.partner_plan, None),
            ],
            name="Trade fair",
            kind="event",
            bypass_gap=True,
        )

    def _counts(self):
        return (
            self.Log.search_count([]),
            self.env["mail.activity"].search_count([]),
            self.env["mail.message"].search_count([]),
            self.env["mail.mail"].search_count([]),
        )

    # Preview ------------------------------------------------------------------

    @freeze_time("2026-12-01 10:00:00")
    def test_preview_lists_who_is_due_and_creates_nothing(self):
        self.other_customer.followup_blocked = True
        before = self._counts()
        decisions = self.renewal._get_preview_decisions()
        self.assertEqual(self._counts(), before)
        outcome = {
            d.due.partner_id: (d.outcome, d.reason)
            for d in decisions
            if d.due.partner_id in (self.customer | self.other_customer).ids
        }
        self.assertEqual(
            outcome,
            {
                self.customer.id: ("done", False),
                self.other_customer.id: ("skipped", "contact blocked"),
            },
        )

    @freeze_time("2026-12-01 10:00:00")
    def test_preview_button_opens_a_window_saved_never(self):
        action = self.renewal.with_user(self.sale_manager).action_preview()
        self.assertEqual(action["res_model"], "partner.followup.preview")
        before = self._counts()
        preview = Form(
            self.env["partner.followup.preview"]
            .with_user(self.sale_manager)
            .with_context(**action["context"])
        )
        self.assertIn("Followed Ltd", preview.preview_html)
        self.assertIn("Renewal call", preview.preview_html)
        self.assertGreaterEqual(preview.due_count, 2)
        self.assertEqual(self._counts(), before)
        self.assertFalse(self.env["partner.followup.preview"].search([]))

    def test_preview_of_a_rule_nobody_is_due_for(self):
        self.renewal.step_ids.delay = -1
        with freeze_time("2026-11-01 10:00:00"):
            preview = Form(
                self.env["partner.followup.preview"].with_context(
                    default_rule_id=self.renewal.id
                )
            )
        self.assertIn("Nobody is due today", preview.preview_html)

    # Campaign ---------------------------------------------------------------------

    def _launch(self, partners, name="Fair 2026", user=None):
        wizard = Form(
            self.env["partner.followup.campaign.wizard"]
            .with_user(user or self.salesman)
            .with_context(active_model="res.partner", active_ids=partners.ids)
        )
        wizard.name = name
        return wizard.save().action_launch()

    def test_campaign_first_step_now_chase_fifteen_working_days_later(self):
        with freeze_time("2026-11-20 10:00:00"):
            action = self._launch(self.customer | self.sponsor_contact)
        self.assertIn("2 contacts followed up", action["params"]["message"])
        logs = self._logs(self.campaign)
        self.assertEqual(logs.partner_id, self.customer | self.sponsor)
        self.assertEqual(set(logs.mapped("occurrence")), {"Fair 2026"})
        with freeze_time("2026-12-10 10:00:00"):
            self._run()
        self.assertEqual(len(self._logs(self.campaign)), 2)
        with freeze_time("2026-12-11 10:00:00"):
            self._run()
        self.assertEqual(
            self._logs(self.campaign, partner_id=self.customer.id).mapped(
                "step_id.name"
            ),
            ["Invitation", "Campaign chase +15"],
        )

    def test_campaign_launched_twice_invites_once(self):
        with freeze_time("2026-11-20 10:00:00"):
            self._launch(self.customer)
            self._launch(self.customer)
            self.assertEqual(len(self._logs(self.campaign)), 1)
            self._launch(self.customer, name="Launch 2027")
        self.assertEqual(len(self._logs(self.campaign)), 2)

    def test_campaign_wakes_the_cron_for_its_chase(self):
        cron = self.env.ref("sale_referral_lifecycle.ir_cron_partner_followup")
        with freeze_time("2026-11-20 10:00:00"):
            self._launch(self.customer)
        calls = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        self.assertIn(datetime(2026, 12, 11, 5, 0), calls.mapped("call_at"))

    # Contact form ---------------------------------------------------------------------

    def test_contact_shows_its_followups_and_the_next_one(self):
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.customer.invalidate_recordset(["followup_count", "followup_next"])
        self.assertEqual(self.customer.followup_count, 1)
        self.assertEqual(self.customer.followup_next, "Call the contact on 2026-12-01")
        action = self.customer.action_view_followups()
        self.assertEqual(
            self.Log.search(action["domain"]),
            self._logs(self.renewal, partner_id=self.customer.id),
        )
        self.assertEqual(self.renewal.log_count, len(self._logs(self.renewal)))
        self.assertEqual(
            self.Log.search(self.renewal.action_view_logs()["domain"]),
            self._logs(self.renewal),
        )

    # Access ------------------------------------------------------------

    def test_salesperson_sees_the_followups_of_own_contacts_only(self):
        self.company.followup_min_gap_days = 0
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        mine = self.Log.with_user(self.salesman).search(
            [("rule_id", "=", self.renewal.id)]
        )
        self.assertEqual(mine.partner_id, self.customer)
        everyone = self.Log.with_user(self.salesman_all).search(
            [("rule_id", "=", self.renewal.id)]
        )
        self.assertEqual(everyone.partner_id, self.customer | self.other_customer)

    def test_salesperson_cannot_edit_rules(self):
        with self.assertRaises(AccessError):
            self.renewal.with_user(self.salesman).write({"name": "Mine"})
        with self.assertRaises(AccessError):
            self.Rule.with_user(self.salesman).create(
                {"name": "Mine", "trigger": "dormant"}
            )
        self.assertEqual(self.renewal.name, "Renewal")
        self.assertEqual(self.renewal.with_user(self.salesman).name, "Renewal")

    def test_sales_administrator_creates_a_rule_with_the_form(self):
        with Form(self.Rule.with_user(self.sale_manager)) as form:
            form.name = "Testimonial"
            form.trigger = "stage_entered"
            form.kind = "opportunistic"
            with form.step_ids.new() as step:
                step.name = "Ask for a testimonial"
                step.delay = 0
                step.activity_plan_id = self.partner_plan
        rule = form.record
        self.assertRecordValues(
            rule, [{"res_model": "res.partner", "color": 10, "active": True}]
        )
        self.assertEqual(rule.step_ids.name, "Ask for a testimonial")

    def test_step_action_must_match_the_rule_record(self):
        with self.assertRaises(ValidationError):
            self.renewal.step_ids.activity_plan_id = self.order_plan
        self.assertEqual(self.renewal.step_ids.activity_plan_id, self.partner_plan)

    def test_log_of_another_company_is_hidden(self):
        log = self.Log.create(
            {
                "rule_id": self.renewal.id,
                "step_id": self.renewal.step_ids.id,
                "res_model": "res.partner",
                "res_id": self.customer.id,
                "occurrence": "x",
                "partner_id": self.customer.id,
                "user_id": self.salesman_2.id,
                "company_id": self.other_company.id,
                "due_date": date(2026, 12, 1),
                "scheduled_date": date(2026, 12, 1),
                "outcome": "done",
            }
        )
        self.assertFalse(
            self.Log.with_user(self.salesman_all).search([("id", "=", log.id)])
        )
        self.assertEqual(log.document_name, "Followed Ltd")
        self.assertEqual(log.action_open_document()["res_id"], self.customer.id)
