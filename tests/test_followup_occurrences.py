# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Follow-ups as a sales manager checks them: counted from the day the
quotation was sent, stopped by any answer of the customer's side, assigned
to the right person, previewed as the cron does them, and back when the
situation they were about comes back."""

import importlib.util
from datetime import date, datetime
from pathlib import Path

from freezegun import freeze_time

from odoo.exceptions import AccessError, UserError
from odoo.tests import new_test_user, tagged

from .followup_common import FollowupCommon


@tagged("post_install", "-at_install")
class TestFollowupOccurrences(FollowupCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.chase = cls._rule(
            "quote_sent",
            [
                ("Chase +6", 6, cls.order_plan, None),
                ("Chase +13", 13, cls.order_plan, None),
            ],
            name="Quotation chase",
        )
        cls.buyer = cls.env["res.partner"].create(
            {
                "name": "Bea Buyer",
                "parent_id": cls.customer.id,
                "email": "bea@followed.example.com",
            }
        )
        cls.portal_user = new_test_user(
            cls.env,
            login="bea_portal",
            groups="base.group_portal",
            partner_id=cls.buyer.id,
        )

    # The day the quotation was sent ----------------------------------------

    def test_chase_counts_from_the_day_the_quotation_was_sent(self):
        # Drafted on Monday 2 March, sent on Monday 16 March.
        order = self._send_quotation(
            self.customer, datetime(2026, 3, 2, 9), sent=datetime(2026, 3, 16, 9)
        )
        self.assertEqual(order.quotation_sent_date, datetime(2026, 3, 16, 9))
        with freeze_time("2026-03-16 10:00:00"):
            self._run()
        self.assertFalse(self._logs(self.chase))
        with freeze_time("2026-03-23 10:00:00"):
            self._run()
        self.assertFalse(self._logs(self.chase))
        # 6 working days after Monday 16: Tuesday 24.
        with freeze_time("2026-03-24 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(self.chase),
            [
                {
                    "res_id": order.id,
                    "occurrence": "2026-03-16",
                    "due_date": date(2026, 3, 24),
                }
            ],
        )

    def test_quotation_sent_again_starts_again_only_if_the_rule_says_so(self):
        order = self._send_quotation(self.customer, datetime(2026, 3, 2, 9))
        with freeze_time("2026-03-10 10:00:00"):
            self._run()
        self.assertEqual(len(self._logs(self.chase)), 1)
        with freeze_time("2026-03-12 09:00:00"):
            order.with_context(mark_so_as_sent=True).message_post(
                body="Here is the quotation again.", message_type="comment"
            )
        self.assertEqual(order.quotation_sent_date, datetime(2026, 3, 2, 9))
        self.assertEqual(order.quotation_last_sent_date, datetime(2026, 3, 12, 9))
        # First sending: +13 on 19 March, nothing else.
        with freeze_time("2026-03-20 10:00:00"):
            self._run()
        self.assertEqual(
            self._logs(self.chase).mapped("occurrence"), ["2026-03-02", "2026-03-02"]
        )
        self.chase.restart_on_resend = True
        with freeze_time("2026-03-20 10:00:00"):
            self._run()
        # Sent again on Thursday 12: +6 is Friday 20, a new occurrence.
        self.assertEqual(
            self._logs(self.chase).mapped("occurrence"),
            ["2026-03-02", "2026-03-02", "2026-03-12"],
        )

    # What counts as an answer ------------------------------------------------

    def _chase_then_answer(self, post):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        with freeze_time("2026-12-02 10:00:00"):
            post(order)
        with freeze_time("2026-12-09 10:00:00"):
            self._run()
        return self._logs(self.chase).mapped("outcome")

    def test_portal_comment_on_the_quotation_stops_the_chase(self):
        def post(order):
            # What the portal's chatter does: posted as the portal user's
            # contact, sudo.
            order.sudo().message_post(
                body="Can we talk about the price?",
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                author_id=self.portal_user.partner_id.id,
            )

        self.assertEqual(self._chase_then_answer(post), ["done", "skipped"])
        self.assertIn("replied", self._logs(self.chase)[-1].reason)

    def test_email_of_another_contact_of_the_customer_on_the_contact_stops(self):
        def post(order):
            self.customer.message_post(
                body="Still thinking.",
                message_type="email",
                author_id=self.buyer.id,
            )

        self.assertEqual(self._chase_then_answer(post), ["done", "skipped"])

    def test_notes_views_and_other_customers_are_no_answer(self):
        stranger = self._create_customer("Stranger Ltd")

        def post(order):
            # The salesperson's note, the portal's "viewed" notice, a
            # message of somebody else.
            order.message_post(
                body="Called, no answer.",
                message_type="comment",
                subtype_xmlid="mail.mt_note",
                author_id=self.salesman.partner_id.id,
            )
            order.sudo().message_post(
                body="Quotation viewed by customer",
                message_type="notification",
                author_id=self.buyer.id,
            )
            order.message_post(
                body="Hello", message_type="email", author_id=stranger.id
            )

        self.assertEqual(self._chase_then_answer(post), ["done", "done"])

    def test_answer_before_the_first_chase_stops_it_too(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-24 10:00:00"):
            order.message_post(
                body="Received, thanks.",
                message_type="email",
                author_id=self.buyer.id,
            )
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        self.assertEqual(self._logs(self.chase).mapped("outcome"), ["skipped"])

    def test_answer_before_the_quotation_was_sent_does_not_count(self):
        order = self._create_order(self.customer, date_order=datetime(2026, 11, 10))
        with freeze_time("2026-11-12 10:00:00"):
            order.message_post(
                body="Please send a quotation.",
                message_type="email",
                author_id=self.buyer.id,
            )
        with freeze_time("2026-11-20 10:00:00"):
            order.write({"state": "sent"})
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        self.assertEqual(self._logs(self.chase).mapped("outcome"), ["done"])

    def test_dormant_reads_the_signs_of_life_on_the_documents(self):
        rule = self._rule(
            "dormant",
            [("Dormant 180", 180, self.partner_plan, None)],
            delay_type="calendar",
        )
        quiet, answered, busy = (
            self._create_customer(
                name,
                user_id=self.salesman.id,
                email=f"{name.split()[0].lower()}@dormant.example.com",
            )
            for name in ("Quiet Ltd", "Answered Ltd", "Busy Ltd")
        )
        self._set_create_date(quiet | answered | busy, datetime(2026, 1, 5, 10))
        with freeze_time("2026-05-01 10:00:00"):
            orders = {
                partner: self._create_order(partner)
                for partner in (quiet, answered, busy)
            }
            for order in orders.values():
                # The salesperson's own note is no sign of life.
                order.message_post(
                    body="Any news?",
                    message_type="comment",
                    subtype_xmlid="mail.mt_note",
                    author_id=self.salesman.partner_id.id,
                )
            orders[answered].sudo().message_post(
                body="We will come back to you.",
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                author_id=answered.id,
            )
            # Queued, not sent within the test.
            orders[busy].with_context(mail_notify_force_send=False).activity_schedule(
                "mail.mail_activity_data_call"
            ).action_done()
        with freeze_time("2026-07-04 10:00:00"):
            self._run()
        self.assertEqual(self._logs(rule).partner_id & (quiet | answered | busy), quiet)

    # Who gets the activity ----------------------------------------------------

    @freeze_time("2026-11-30 10:00:00")
    def test_quotation_salesperson_when_the_contact_has_none(self):
        self.customer.user_id = False
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        order.user_id = self.salesman_2
        self._run()
        self.assertEqual(self._followup_activities(order).user_id, self.salesman_2)
        log = self._logs(self.chase)
        self.assertEqual(log.responsible_id, self.salesman_2)
        self.assertEqual(log.responsible_reason, "document")
        # Who got the activity reads why, with "own documents" only; another
        # salesperson of the same kind does not.
        own = self.Log.with_user(self.salesman_2).search(
            [("rule_id", "=", self.chase.id)]
        )
        self.assertEqual(own, log)
        # The row reads as the log's list shows it: the quotation and why.
        self.assertEqual(
            own.read(["document_name", "responsible_reason"])[0]["document_name"],
            order.name,
        )
        self.assertFalse(
            self.Log.with_user(self.salesman).search([("rule_id", "=", self.chase.id)])
        )

    def test_upgrade_shows_who_got_the_activity_their_log_rows(self):
        spec = importlib.util.spec_from_file_location(
            "log_rule_migration",
            Path(__file__).resolve().parent.parent
            / "migrations"
            / "18.0.1.4.0"
            / "post-migration.py",
        )
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        rule = self.env.ref(
            "sale_referral_lifecycle.partner_followup_log_personal_rule"
        )
        # A new install has the domain the upgrade gives.
        self.assertEqual(rule.domain_force, migration.NEW_DOMAIN)
        rule.domain_force = migration.OLD_DOMAIN
        migration.migrate(self.env.cr, "18.0.1.3.0")
        self.assertEqual(rule.domain_force, migration.NEW_DOMAIN)
        # A domain an admin wrote stays.
        rule.domain_force = "[('user_id', '=', user.id)]"
        migration.migrate(self.env.cr, "18.0.1.3.0")
        self.assertEqual(rule.domain_force, "[('user_id', '=', user.id)]")

    @freeze_time("2026-11-30 10:00:00")
    def test_archived_salesperson_skipped_for_the_fixed_responsible(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        self.chase.user_id = self.sale_manager
        self.salesman.active = False
        self._run()
        self.assertEqual(self._followup_activities(order).user_id, self.sale_manager)
        self.assertEqual(self._logs(self.chase).responsible_reason, "rule")

    @freeze_time("2026-11-30 10:00:00")
    def test_salesperson_without_access_to_the_company_skipped(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        self.salesman.write(
            {
                "company_ids": [(6, 0, self.other_company.ids)],
                "company_id": self.other_company.id,
            }
        )
        order.sudo().user_id = self.salesman_2
        self._run()
        self.assertEqual(self._followup_activities(order).user_id, self.salesman_2)

    @freeze_time("2026-11-30 10:00:00")
    def test_never_odoobot(self):
        self.customer.user_id = False
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        order.user_id = False
        self.env["crm.team"].search([]).user_id = False
        self._run()
        odoobot = self.env.ref("base.user_root")
        self.assertNotIn(odoobot, self._followup_activities(order).user_id)
        self.assertNotIn(odoobot, self._logs(self.chase).responsible_id)

    @freeze_time("2026-11-30 10:00:00")
    def test_team_leader_last(self):
        self.customer.user_id = False
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        order.user_id = False
        team = self.env["crm.team"].create(
            {"name": "Leaders", "user_id": self.sale_manager.id}
        )
        order.team_id = team
        self._run()
        self.assertEqual(self._followup_activities(order).user_id, self.sale_manager)
        self.assertEqual(self._logs(self.chase).responsible_reason, "team")

    @freeze_time("2026-11-30 10:00:00")
    def test_plan_responsible_first_unless_archived(self):
        plan = self.env["mail.activity.plan"].create(
            {
                "name": "Manager call",
                "res_model": "sale.order",
                "template_ids": [
                    (
                        0,
                        0,
                        {
                            "activity_type_id": self.call.id,
                            "summary": "Manager call",
                            "responsible_type": "other",
                            "responsible_id": self.sale_manager.id,
                        },
                    )
                ],
            }
        )
        self.chase.step_ids[0].activity_plan_id = plan
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        self._run()
        self.assertEqual(self._followup_activities(order).user_id, self.sale_manager)
        self.assertEqual(self._logs(self.chase).responsible_reason, "plan")


@tagged("post_install", "-at_install")
class TestFollowupPreviewAndCycles(FollowupCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.subscription = cls.env["product.product"].create(
            {
                "name": "Yearly subscription",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
            }
        )
        cls.renewal = cls._rule(
            "subscription_end",
            [("Renewal call", -10, cls.partner_plan, None)],
            name="Renewal",
            sequence=1,
            delay_type="calendar",
        )
        cls.chase = cls._rule(
            "quote_sent",
            [("Chase +6", 6, cls.order_plan, None)],
            name="Quotation chase",
            sequence=5,
        )
        cls.dormant = cls._rule(
            "dormant",
            [("Dormant 30", 30, cls.partner_plan, None)],
            name="Dormant",
            sequence=8,
            delay_type="calendar",
        )

    def _key(self, rule, step, res_model, res_id, outcome, scheduled, reason):
        return (
            rule.id,
            step.id,
            res_model,
            res_id,
            outcome,
            scheduled,
            reason or False,
        )

    def test_preview_says_postponed_because_of_a_higher_priority_rule(self):
        self.customer.subscription_end_date = date(2026, 12, 10)
        self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._process_lifecycle_queue()
            preview = self.env["partner.followup.preview"].create(
                {"rule_id": self.chase.id}
            )
            html = str(preview.preview_html)
            self.assertIn("Postponed to 12/02/2026", html)
            self.assertIn("Renewal", html)
            self._run()
        self.assertEqual(self._logs(self.chase).outcome, "postponed")
        self.assertEqual(self._logs(self.chase).scheduled_date, date(2026, 12, 2))

    def test_preview_and_cron_agree_when_every_rule_is_due(self):
        fan = self.env.ref("sale_referral_lifecycle.stage_fan")
        stage = self._rule(
            "stage_entered",
            [("Testimonial", 0, self.partner_plan, None)],
            name="Stage",
            sequence=3,
            stage_ids=[(6, 0, fan.ids)],
        )
        rules = self.renewal | self.chase | self.dormant | stage
        customers = self.customer
        for index in range(4):
            customers |= self._create_customer(
                f"Population {index}", user_id=self.salesman.id
            )
        for index, partner in enumerate(customers):
            self._set_create_date(partner, datetime(2026, 9, 1, 10))
            partner.subscription_end_date = date(2026, 12, 8 + index % 3)
            self._send_quotation(partner, datetime(2026, 11, 20, 10))
            if index % 2:
                partner.lifecycle_stage_id = fan
        customers[1].followup_blocked = True
        with freeze_time("2026-11-30 10:00:00"):
            self._process_lifecycle_queue()
            self.env.flush_all()
            # Only the test's contacts, as the run below.
            expected = {
                self._key(
                    d.due.rule,
                    d.due.step,
                    d.due.res_model,
                    d.due.res_id,
                    d.outcome,
                    d.scheduled_date,
                    d.reason,
                )
                for rule in rules
                for d in rule._get_preview_decisions()
                if d.due.partner_id in customers.ids
            }
            self.assertTrue(expected)
            self.assertEqual(
                {key[4] for key in expected}, {"done", "postponed", "skipped"}
            )
            self._run()
        logs = self.Log.search(
            [("rule_id", "in", rules.ids), ("partner_id", "in", customers.ids)]
        )
        self.assertEqual(
            {
                self._key(
                    log.rule_id,
                    log.step_id,
                    log.res_model,
                    log.res_id,
                    log.outcome,
                    log.scheduled_date,
                    log.reason,
                )
                for log in logs
            },
            expected,
        )

    def test_cancelled_renewal_brings_the_renewal_call_back(self):
        self.chase.active = self.dormant.active = False
        with freeze_time("2026-01-15 10:00:00"):
            self._confirm_order(
                self.customer,
                order_line=[
                    (0, 0, {"product_id": self.subscription.id, "product_uom_qty": 1})
                ],
            )
        self.assertEqual(self.customer.subscription_end_date, date(2027, 1, 15))
        with freeze_time("2027-01-05 10:00:00"):
            self._run()
            self.assertTrue(self._followup_activities(self.customer))
            renewal = self._confirm_order(
                self.customer,
                order_line=[
                    (0, 0, {"product_id": self.subscription.id, "product_uom_qty": 1})
                ],
            )
        self.assertEqual(self.customer.subscription_end_date, date(2028, 1, 15))
        self.assertFalse(self._followup_activities(self.customer))
        first = self._logs(self.renewal)
        self.assertRecordValues(first, [{"outcome": "done", "released": True}])
        self.assertIn("renewed", first.reason)
        with freeze_time("2027-01-06 10:00:00"):
            renewal._action_cancel()
            self._process_lifecycle_queue()
        self.assertEqual(self.customer.subscription_end_date, date(2027, 1, 15))
        with freeze_time("2027-01-07 10:00:00"):
            self._run()
            self._run()
        logs = self._logs(self.renewal)
        self.assertRecordValues(
            logs,
            [
                {"outcome": "done", "released": True, "cycle": 0},
                {"outcome": "done", "released": False, "cycle": 1},
            ],
        )
        self.assertEqual(len(self._followup_activities(self.customer)), 1)

    # The log, an audit trail ----------------------------------------------------

    @freeze_time("2026-12-01 10:00:00")
    def test_nobody_rewrites_or_deletes_the_log(self):
        self.customer.subscription_end_date = date(2026, 12, 10)
        self._run()
        log = self._logs(self.renewal)
        self.assertTrue(log)
        for user in (self.salesman, self.sale_manager):
            as_user = log.with_user(user)
            with self.assertRaises(AccessError):
                as_user.write({"outcome": "skipped"})
            with self.assertRaises(AccessError):
                as_user.unlink()
            with self.assertRaises(AccessError):
                self.Log.with_user(user).create(
                    {
                        "rule_id": self.renewal.id,
                        "step_id": self.renewal.step_ids.id,
                        "res_model": "res.partner",
                        "res_id": self.customer.id,
                        "occurrence": "2026-12-10",
                        "cycle": 7,
                        "partner_id": self.customer.id,
                        "company_id": self.company.id,
                        "due_date": date(2026, 12, 1),
                        "scheduled_date": date(2026, 12, 1),
                        "outcome": "skipped",
                    }
                )
        with self.assertRaises(UserError):
            log.unlink()
        log.invalidate_recordset()
        self.assertRecordValues(log, [{"outcome": "done", "released": False}])
        with self.assertRaises(UserError):
            log.with_user(self.salesman).action_rearm()
        self.assertEqual(len(self._logs(self.renewal)), 1)

    def test_manager_rearms_a_step_once(self):
        self.customer.subscription_end_date = date(2026, 12, 10)
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
            self._run()
        log = self._logs(self.renewal)
        self.assertEqual(len(log), 1)
        with freeze_time("2026-12-02 10:00:00"):
            log.with_user(self.sale_manager).action_rearm()
        self.assertIn("re-armed", self.customer.message_ids[0].body)
        self.assertEqual(
            self._logs(self.renewal).mapped("outcome"), ["done", "rearmed"]
        )
        with freeze_time("2026-12-03 10:00:00"):
            self._run()
            self._run()
        self.assertEqual(
            self._logs(self.renewal).mapped("outcome"), ["done", "rearmed", "done"]
        )
        self.assertEqual(len(self._followup_activities(self.customer)), 2)

    # Shared contacts -----------------------------------------------------------------

    def test_shared_contact_followed_in_each_company_with_its_documents(self):
        self.renewal.active = self.chase.active = False
        self.other_company.followup_min_gap_days = 2
        olga = new_test_user(
            self.env,
            login="olga_other",
            name="Olga Other",
            groups="sales_team.group_sale_salesman",
            company_id=self.other_company.id,
            company_ids=[(6, 0, self.other_company.ids)],
        )
        self.dormant.user_id = olga
        there, both, nowhere = (
            self._create_customer(name, user_id=self.salesman_2.id)
            for name in ("There Ltd", "Both Ltd", "Nowhere Ltd")
        )
        for partner in (there, both):
            order = self._create_order(partner)
            order.write({"company_id": self.other_company.id})
        self._create_order(both)
        self._set_create_date(there | both | nowhere, datetime(2026, 9, 1, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        logs = self._logs(self.dormant).filtered(
            lambda log: log.partner_id in there | both | nowhere
        )
        self.assertEqual(
            sorted((log.partner_id.name, log.company_id.name) for log in logs),
            sorted(
                [
                    ("Both Ltd", "Other Co"),
                    ("Both Ltd", self.company.name),
                    ("Nowhere Ltd", self.company.name),
                    ("There Ltd", "Other Co"),
                ]
            ),
        )
        for log in logs:
            expected = olga if log.company_id == self.other_company else self.salesman_2
            self.assertEqual(log.responsible_id, expected, log.partner_id.name)
