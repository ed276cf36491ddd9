# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime, timedelta

from freezegun import freeze_time
from psycopg2 import IntegrityError

from odoo import fields
from odoo.tests import tagged

from ..models.followup.partner_followup_engine import FOLLOWUP_CRON_CURSOR
from ..models.working_days import WorkingDays
from .followup_common import FollowupCommon


@tagged("post_install", "-at_install")
class TestFollowupEngine(FollowupCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Two renewal rules due the same day: the first has priority.
        cls.first = cls._rule(
            "subscription_end",
            [("Renewal call", -10, cls.partner_plan, None)],
            name="Renewal",
            sequence=1,
            delay_type="calendar",
        )
        cls.second = cls._rule(
            "subscription_end",
            [("Renewal check", -10, cls.partner_plan, None)],
            name="Renewal check",
            sequence=2,
            delay_type="calendar",
        )
        cls.customer.subscription_end_date = date(2026, 12, 10)

    def _outcomes(self, rule, partner=None):
        return self._logs(rule, partner_id=(partner or self.customer).id).mapped(
            "outcome"
        )

    # Working days and time zones ---------------------------------------------

    def test_working_days_skip_weekends_and_public_holidays(self):
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": self.calendar.id,
                "date_from": datetime(2026, 11, 24, 23, 0),
                "date_to": datetime(2026, 11, 25, 22, 59),
            }
        )
        days = WorkingDays(self.company, datetime(2026, 11, 20, 10))
        self.assertEqual(days.today, date(2026, 11, 20))
        self.assertEqual(days.shift(date(2026, 11, 20), 1), date(2026, 11, 23))
        self.assertEqual(days.shift(date(2026, 11, 20), 3), date(2026, 11, 26))
        self.assertEqual(days.shift(date(2026, 11, 30), -2), date(2026, 11, 26))
        self.assertEqual(
            days.shift(date(2026, 11, 20), 3, working=False), date(2026, 11, 23)
        )
        self.assertEqual(days.first_working_day(date(2026, 11, 21)), date(2026, 11, 23))
        # The latest quotation date whose 6th working day is today (Dec 2).
        later = WorkingDays(self.company, datetime(2026, 12, 2, 10))
        self.assertEqual(later.latest_reference(6), date(2026, 11, 23))

    def test_company_day_where_utc_is_still_the_previous_day(self):
        # The quotation chase alone: no renewal due the same days.
        self.customer.subscription_end_date = False
        self.calendar.tz = "Pacific/Auckland"
        rule = self._rule("quote_sent", [("Chase +6", 6, self.order_plan, None)])
        # Friday 20 in Auckland; 6 working days later: Monday 30.
        order = self._send_quotation(self.customer, datetime(2026, 11, 19, 22))
        # Sunday 29 at 20:00 UTC: Monday 30 at 09:00 in Auckland.
        with freeze_time("2026-11-29 20:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(rule), [{"res_id": order.id, "due_date": date(2026, 11, 30)}]
        )
        self.assertEqual(
            self._followup_activities(order).date_deadline, date(2026, 11, 30)
        )

    def test_same_moment_in_brussels_is_still_sunday(self):
        rule = self._rule("quote_sent", [("Chase +6", 6, self.order_plan, None)])
        self._send_quotation(self.customer, datetime(2026, 11, 20, 9))
        with freeze_time("2026-11-29 20:00:00"):
            self._run()
        self.assertFalse(self._logs(rule))

    # Idempotence --------------------------------------------------------------

    @freeze_time("2026-12-01 10:00:00")
    def test_running_twice_creates_nothing_new(self):
        self.company.followup_min_gap_days = 0
        first = self._run()
        self.assertEqual(first["done"], 2)
        activities = self._followup_activities(self.customer)
        messages = self.customer.message_ids
        self.assertFalse(self._run())
        self.assertEqual(self._followup_activities(self.customer), activities)
        self.assertEqual(self.customer.message_ids, messages)

    def test_log_refuses_a_second_row_for_one_occurrence(self):
        values = {
            "rule_id": self.first.id,
            "step_id": self.first.step_ids.id,
            "res_model": "res.partner",
            "res_id": self.customer.id,
            "occurrence": "2026-12-10",
            "partner_id": self.customer.id,
            "company_id": self.company.id,
            "due_date": date(2026, 11, 30),
            "scheduled_date": date(2026, 11, 30),
            "outcome": "done",
        }
        self.Log.create(values)
        with self.assertRaises(IntegrityError), self.cr.savepoint():
            with self.assertLogs("odoo.sql_db", "ERROR"):
                self.Log.create(dict(values, outcome="skipped"))
        self.assertEqual(len(self._logs(self.first)), 1)

    def test_cron_goes_through_contacts_in_batches(self):
        Param = self.env["ir.config_parameter"].sudo()
        Param.set_param(FOLLOWUP_CRON_CURSOR, self.customer.id - 1)
        progress = self.env["ir.cron.progress"].create(
            {
                "cron_id": self.env.ref(
                    "sale_referral_lifecycle.ir_cron_partner_followup"
                ).id
            }
        )
        other = self._create_customer(
            "Next Ltd",
            user_id=self.salesman.id,
            subscription_end_date=date(2026, 12, 10),
        )
        engine = self.Engine.with_context(ir_cron_progress_id=progress.id)
        with freeze_time("2026-12-01 10:00:00"):
            engine._cron_run_followups(batch_size=1)
            self.assertEqual(
                int(Param.get_param(FOLLOWUP_CRON_CURSOR)), self.customer.id
            )
            self.assertEqual(self._outcomes(self.first), ["done"])
            self.assertFalse(self._outcomes(self.first, other))
            self.assertEqual(progress.done, 1)
            self.assertGreaterEqual(progress.remaining, 1)
            while int(Param.get_param(FOLLOWUP_CRON_CURSOR)):
                engine._cron_run_followups(batch_size=1000)
        self.assertEqual(self._outcomes(self.first, other), ["done"])
        self.assertEqual(progress.remaining, 0)

    # Arbitration ----------------------------------------------------------------

    @freeze_time("2026-12-01 10:00:00")  # a Tuesday
    def test_gap_postpones_lower_priority_steps_with_the_reason(self):
        self._run()
        self.assertEqual(self._outcomes(self.first), ["done"])
        self.assertRecordValues(
            self._logs(self.second),
            [
                {
                    "outcome": "postponed",
                    "reason": "lower priority than 'Renewal call' of rule 'Renewal'",
                    "due_date": date(2026, 11, 30),
                    "scheduled_date": date(2026, 12, 3),
                    "postpone_count": 1,
                }
            ],
        )
        self.assertEqual(len(self._followup_activities(self.customer)), 1)

    def test_postponed_step_fires_once_the_gap_is_over(self):
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        with freeze_time("2026-12-02 10:00:00"):
            self._run()
        self.assertEqual(self._outcomes(self.second), ["postponed"])
        with freeze_time("2026-12-03 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(self.second),
            [{"outcome": "done", "scheduled_date": date(2026, 12, 3)}],
        )
        self.assertEqual(len(self._followup_activities(self.customer)), 2)

    def test_gap_after_an_earlier_followup_counts_working_days(self):
        self.second.step_ids.delay = -4  # due Sunday 6, after a Friday call
        with freeze_time("2026-12-04 10:00:00"):  # Friday
            self._run(rules=self.first)
        with freeze_time("2026-12-07 10:00:00"):  # Monday
            self._run()
        self.assertRecordValues(
            self._logs(self.second),
            [
                {
                    "outcome": "postponed",
                    "reason": "gap: 'Renewal call' on 12/04/2026",
                    "scheduled_date": date(2026, 12, 8),
                }
            ],
        )
        with freeze_time("2026-12-08 10:00:00"):
            self._run()
        self.assertEqual(self._outcomes(self.second), ["done"])

    @freeze_time("2026-12-01 10:00:00")
    def test_no_gap_fires_every_step(self):
        self.company.followup_min_gap_days = 0
        self._run()
        self.assertEqual(
            self._outcomes(self.first) + self._outcomes(self.second), ["done", "done"]
        )

    @freeze_time("2026-12-01 10:00:00")
    def test_event_rule_marked_so_ignores_the_gap(self):
        self.second.write({"kind": "event", "bypass_gap": True})
        self._run()
        self.assertEqual(self._outcomes(self.second), ["done"])
        self.assertEqual(self._outcomes(self.first), ["done"])

    @freeze_time("2026-12-01 10:00:00")
    def test_event_rule_without_bypass_waits_like_the_others(self):
        self.second.write({"kind": "event", "bypass_gap": False})
        self._run()
        self.assertEqual(self._outcomes(self.second), ["postponed"])

    def test_never_two_emails_the_same_day(self):
        template = self.env.ref(
            "sale_referral_lifecycle.mail_template_followup_renewal_proposal"
        )
        self.first.step_ids.write(
            {"activity_plan_id": False, "mail_template_id": template.id}
        )
        self.second.step_ids.write({"mail_template_id": template.id})
        self.second.write({"kind": "event", "bypass_gap": True})
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(self.second),
            [
                {
                    "outcome": "postponed",
                    "reason": "an email was already sent to this contact today",
                    "scheduled_date": date(2026, 12, 2),
                }
            ],
        )
        with freeze_time("2026-12-02 10:00:00"):
            self._run()
        self.assertEqual(self._outcomes(self.second), ["done"])
        mails = self.env["mail.mail"].search(
            [("model", "=", "res.partner"), ("res_id", "=", self.customer.id)]
        )
        self.assertEqual(len(mails), 2)

    def test_postponed_step_skipped_when_its_source_closed(self):
        chase = self._rule(
            "quote_sent",
            [("Chase +6", 6, self.order_plan, None)],
            sequence=3,
        )
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        # Sending a quotation recomputed the contact's subscription end.
        self.customer.subscription_end_date = date(2026, 12, 10)
        self.second.active = False
        self.first.step_ids.delay = -9  # due Dec 1, when the chase is still due
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.assertEqual(self._outcomes(chase), ["postponed"])
        order.action_confirm()
        with freeze_time("2026-12-03 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(chase),
            [
                {
                    "outcome": "skipped",
                    "reason": "source closed: the quotation was answered",
                }
            ],
        )
        self.assertFalse(self._followup_activities(order))

    # Blocked, archived, replies -------------------------------------------------

    @freeze_time("2026-12-01 10:00:00")
    def test_blocked_contact_is_skipped_and_logged(self):
        self.customer.followup_blocked = True
        self._run()
        self.assertRecordValues(
            self._logs(self.first),
            [{"outcome": "skipped", "reason": "contact blocked"}],
        )
        self.assertFalse(self._followup_activities(self.customer))
        self.customer.followup_blocked = False
        self._run()
        self.assertEqual(self._outcomes(self.first), ["skipped"])

    @freeze_time("2026-12-01 10:00:00")
    def test_archived_contact_is_skipped_and_logged(self):
        self.customer.active = False
        self._run()
        self.assertRecordValues(
            self._logs(self.first),
            [{"outcome": "skipped", "reason": "contact archived"}],
        )
        self.assertFalse(self.customer.with_context(active_test=False).activity_ids)

    def test_reply_of_the_contact_stops_the_sequence(self):
        # The quotation chase alone: no renewal due the same days.
        self.customer.subscription_end_date = False
        chase = self._rule(
            "quote_sent",
            [
                ("Chase +6", 6, self.order_plan, None),
                ("Chase +13", 13, self.order_plan, None),
            ],
        )
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        with freeze_time("2026-12-02 10:00:00"):
            order.message_post(
                body="We are thinking about it.",
                message_type="email",
                author_id=self.customer.id,
            )
        with freeze_time("2026-12-09 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(chase),
            [
                {"outcome": "done", "reason": False},
                {"outcome": "skipped", "reason": "the contact replied on 12/02/2026"},
            ],
        )

    def test_reply_does_not_stop_a_rule_that_goes_on(self):
        # The quotation chase alone: no renewal due the same days.
        self.customer.subscription_end_date = False
        chase = self._rule(
            "quote_sent",
            [
                ("Chase +6", 6, self.order_plan, None),
                ("Chase +13", 13, self.order_plan, None),
            ],
            stop_on_reply=False,
        )
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        with freeze_time("2026-12-02 10:00:00"):
            order.message_post(
                body="Later.", message_type="email", author_id=self.customer.id
            )
        with freeze_time("2026-12-09 10:00:00"):
            self._run()
        self.assertEqual(self._logs(chase).mapped("outcome"), ["done", "done"])

    # Conditions and responsibles ----------------------------------------------

    @freeze_time("2026-12-01 10:00:00")
    def test_conditions_on_stage_salesperson_team_and_filter(self):
        self.second.active = False
        other = self._create_customer(
            "Other Ltd",
            user_id=self.salesman_2.id,
            subscription_end_date=date(2026, 12, 10),
        )
        self.first.salesperson_ids = self.salesman
        self.first.partner_domain = "[('name', 'ilike', 'Ltd')]"
        self._run()
        self.assertEqual(self._outcomes(self.first), ["done"])
        self.assertFalse(self._outcomes(self.first, other))
        team = self.env["crm.team"].create(
            {"name": "Team Sam", "member_ids": [(6, 0, self.salesman_2.ids)]}
        )
        self.first.write(
            {"salesperson_ids": [(5, 0, 0)], "team_ids": [(6, 0, team.ids)]}
        )
        self.first.stage_ids = self.env.ref("sale_referral_lifecycle.stage_fan")
        self._run()
        self.assertFalse(self._outcomes(self.first, other))
        self.first.stage_ids = other.lifecycle_stage_id
        self._run()
        self.assertEqual(self._outcomes(self.first, other), ["done"])

    @freeze_time("2026-12-01 10:00:00")
    def test_activity_assigned_to_the_rule_user_without_salesperson(self):
        self.second.active = False
        self.customer.user_id = False
        self.first.user_id = self.sale_manager
        self._run()
        self.assertEqual(
            self._followup_activities(self.customer).user_id, self.sale_manager
        )

    @freeze_time("2026-12-01 10:00:00")
    def test_chatter_says_which_rule_scheduled_what(self):
        self.second.active = False
        self._run()
        body = self.customer.message_ids[0].body
        self.assertIn("Follow-up rule Renewal, step Renewal call", body)
        self.assertIn("Call the contact", body)
        self.assertIn("Sally Own", body)

    # Multi-company -----------------------------------------------------------------

    def test_company_rule_acts_on_its_company_records_only(self):
        chase = self._rule(
            "quote_sent",
            [("Chase +6", 6, self.order_plan, None)],
            company_id=self.other_company.id,
        )
        here = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        there = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        there.write({"company_id": self.other_company.id})
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(chase),
            [{"res_id": there.id, "company_id": self.other_company.id}],
        )
        self.assertNotIn(here.id, self._logs(chase).mapped("res_id"))

    def test_shared_contact_followed_where_its_subscription_ends(self):
        self.second.active = False
        self.salesman.company_id = self.other_company
        self.other_company.followup_min_gap_days = 0
        # The subscription is per company: the one bought there only.
        self.customer.subscription_end_date = False
        self.customer.with_company(self.other_company).subscription_end_date = date(
            2026, 12, 10
        )
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(self.first), [{"company_id": self.other_company.id}]
        )

    # Query counts ---------------------------------------------------------------------

    def _count_run_queries(self, count):
        partners = self.env["res.partner"].create(
            [
                {
                    "name": f"Flat {count} {index}",
                    "is_company": True,
                    "user_id": self.salesman.id,
                    "subscription_end_date": date(2026, 12, 10),
                }
                for index in range(count)
            ]
        )
        self.env.flush_all()
        before = self.cr.sql_log_count
        with freeze_time("2026-12-01 10:00:00"):
            stats = self.Engine._run(
                rules=self.first, partner_range=(partners[0].id, partners[-1].id)
            )
        self.assertEqual(stats["done"], count)
        return self.cr.sql_log_count - before

    def test_cron_queries_do_not_grow_with_the_number_of_contacts(self):
        self.second.active = False
        self._count_run_queries(1)  # warm the caches
        few = self._count_run_queries(3)
        many = self._count_run_queries(30)
        self.assertEqual(few, many)

    def test_settings_edit_the_company_gap(self):
        settings = self.env["res.config.settings"].create({"followup_min_gap_days": 5})
        settings.execute()
        self.assertEqual(self.company.followup_min_gap_days, 5)

    def test_datetime_at_is_the_company_morning_in_utc(self):
        days = WorkingDays(self.company, fields.Datetime.now())
        self.assertEqual(
            days.datetime_at(date(2026, 12, 1)), datetime(2026, 12, 1, 5, 0)
        )
        self.assertEqual(days.shift(days.today, 0), days.today)
        self.assertLess(days.shift(days.today, -1), days.today)
        self.assertGreater(days.shift(days.today, 1), days.today)
        self.assertEqual(
            days.shift(days.today, 400, working=False), days.today + timedelta(days=400)
        )
