# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from contextlib import contextmanager
from datetime import date, datetime, timedelta
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from ..models.followup.partner_followup_engine import (
    FOLLOWUP_CRON_CURSOR,
    FOLLOWUP_CRON_LAST_RUN,
    MAX_ID,
)
from .followup_common import FollowupCommon

# What the incremental pass reads by their dates of writing.
WRITTEN_TABLES = (
    "res_partner",
    "sale_order",
    "account_move",
    "referral_referral",
    "partner_followup_log",
    "partner_followup_rule",
    "partner_followup_step",
    "res_company",
    "res_users",
    "crm_team_member",
    "resource_calendar",
    "resource_calendar_leaves",
    "resource_calendar_attendance",
)


@tagged("post_install", "-at_install")
class TestFollowupIncremental(FollowupCommon):
    """The cron's pass after a complete one reads the days that entered each
    step's window and the contacts changed since: day after day, with frozen
    time, it finds exactly what a full detection finds."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.chase = cls._rule(
            "quote_sent",
            [
                ("Chase +3", 3, cls.order_plan, None),
                ("Chase +8", 8, cls.order_plan, None),
            ],
            name="Quotation chase",
            sequence=5,
            max_late_days=30,
        )
        cls.cocooning = cls._rule(
            "order_confirmed",
            [("Cocooning +5", 5, cls.order_plan, None)],
            name="Cocooning",
            sequence=6,
            first_order_only=True,
        )
        cls.renewal = cls._rule(
            "subscription_end",
            [
                ("Renewal -10", -10, cls.partner_plan, None),
                ("Lapsed +2", 2, cls.partner_plan, None),
            ],
            name="Renewal",
            sequence=1,
            delay_type="calendar",
        )
        cls.dormant = cls._rule(
            "dormant",
            [("Dormant 20", 20, cls.partner_plan, None)],
            name="Dormant",
            sequence=8,
            delay_type="calendar",
        )
        cls.population = cls.customer
        for index in range(7):
            cls.population |= cls._create_customer(
                f"Population {index}",
                user_id=cls.salesman.id,
                email=f"population{index}@incremental.example.com",
            )

    def _stamp(self, moment, everything=False):
        """What the test wrote (dated with the transaction's start, whatever
        time is frozen) dated ``moment`` instead, as if written then; with
        ``everything``, every row (the database's own past)."""
        self.env.flush_all()
        now = self.env.cr.now()
        which = "TRUE" if everything else "{column} = %(now)s"
        for table, column in [(table, "write_date") for table in WRITTEN_TABLES] + [
            ("mail_message", "create_date")
        ]:
            self.env.cr.execute(
                f"UPDATE {table} SET {column} = %(moment)s "  # noqa: S608
                f"WHERE {which.format(column=column)}",
                {"moment": moment, "now": now},
            )
        self.env.invalidate_all()

    @contextmanager
    def _changed_reads(self):
        """The calls of ``_changed_partner_ids`` (the changed contacts read:
        an incremental detection) made within, as a list."""
        Engine = type(self.Engine)
        calls = []
        changed = Engine._changed_partner_ids

        def spy(engine, *args):
            calls.append(args)
            return changed(engine, *args)

        with patch.object(Engine, "_changed_partner_ids", spy):
            yield calls

    def _key(self, due):
        return (
            due.rule.id,
            due.step.id,
            due.res_model,
            due.res_id,
            due.occurrence,
            due.partner_id,
            due.due_date,
            due.log_id,
        )

    def _detect(self, passes=None):
        keys = set()
        engine = self.Engine.sudo()
        for company, rules, days in engine._iter_companies(None, None):
            keys |= {
                self._key(due)
                for due in engine.with_company(company)._detect_due_steps(
                    rules, days, (self.sponsor.id, MAX_ID), passes
                )
            }
        return keys

    def _events(self):
        """What happens, day by day: quotations sent (one sent long after
        it was drafted, one dated before the last run), answered, confirmed,
        orders, subscriptions ending and renewed, signs of life, a log row
        re-armed."""
        c = self.population

        def answer(record, author):
            record.sudo().message_post(
                body="Let us talk.",
                message_type="comment",
                subtype_xmlid="mail.mt_comment",
                author_id=author.id,
            )

        def send(partner, drafted=None):
            order = self._create_order(
                partner, date_order=drafted or fields.Datetime.now()
            )
            order.write({"state": "sent"})
            return order

        orders = {}
        return {
            date(2026, 11, 2): lambda: orders.update(q0=send(c[0]), q1=send(c[1])),
            date(2026, 11, 4): lambda: answer(orders["q1"], c[1]),
            date(2026, 11, 5): lambda: self._confirm_order(c[2]),
            date(2026, 11, 9): lambda: c[3].write(
                {"subscription_end_date": date(2026, 11, 26)}
            ),
            date(2026, 11, 10): lambda: orders.update(
                q4=send(c[4], datetime(2026, 10, 1, 9))
            ),
            date(2026, 11, 12): lambda: orders["q4"].action_confirm(),
            date(2026, 11, 16): lambda: answer(c[5], c[5]),
            date(2026, 11, 18): lambda: c[6].write(
                {"subscription_end_date": date(2026, 11, 20)}
            ),
            # A quotation dated and sent a week ago, recorded today.
            date(2026, 11, 23): lambda: orders.update(
                q7=self._send_quotation(c[7], datetime(2026, 11, 16, 10))
            ),
            date(2026, 11, 24): lambda: self._logs(self.renewal, partner_id=c[3].id)[:1]
            .with_user(self.sale_manager)
            .action_rearm(),
            date(2026, 11, 25): lambda: c[3].write(
                {"subscription_end_date": date(2026, 12, 4)}
            ),
            date(2026, 11, 30): lambda: self._confirm_order(c[0]),
        }

    def test_incremental_detection_finds_what_a_full_one_finds(self):
        self._set_create_date(self.population, datetime(2026, 9, 1, 10))
        events = self._events()
        day = date(2026, 10, 30)
        self._stamp(datetime(2026, 10, 29, 10), everything=True)
        previous = None
        due_days = quiet_days = incremental_days = 0
        while day <= date(2026, 12, 18):
            moment = datetime.combine(day, datetime.min.time()) + timedelta(hours=9)
            with freeze_time(moment):
                if day in events:
                    events[day]()
                self._process_lifecycle_queue()
                self._stamp(moment)
                full = self._detect()
                current = self.Engine._start_pass()
                incremental = self._detect((previous, dict(current, latest={})))
                self.assertEqual(incremental, full, f"on {day}")
                if previous:
                    covered, changed = self.Engine.with_company(
                        self.company
                    )._detection_since(
                        self.Rule.search([]), None, (self.sponsor.id, MAX_ID), previous
                    )
                    incremental_days += bool(covered)
                    quiet_days += bool(covered) and not changed
                due_days += bool(full)
                self.Engine._run((self.sponsor.id, MAX_ID), passes=(previous, current))
                self._stamp(moment)
                previous = current
            day += timedelta(days=1)
        # Steps were due on many days, and most days nothing was written:
        # the incremental pass then read the days passing only.
        self.assertGreater(due_days, 8)
        self.assertEqual(incremental_days, (day - date(2026, 10, 31)).days)
        self.assertGreater(quiet_days, 20)
        self.assertEqual(
            set(self._logs(self.chase).mapped("outcome")), {"done", "skipped"}
        )
        self.assertTrue(self._logs(self.dormant))
        self.assertTrue(self._logs(self.cocooning))
        self.assertGreater(len(self._logs(self.renewal)), 3)

    def test_cron_reads_what_changed_after_a_complete_pass(self):
        Param = self.env["ir.config_parameter"].sudo()
        late = self.population[3]
        late.subscription_end_date = date(2026, 12, 10)
        self._stamp(datetime(2026, 11, 29, 9), everything=True)
        with self._changed_reads() as calls:
            with freeze_time("2026-11-30 09:00:00"):
                # The first pass, in batches: every contact.
                self.Engine._cron_run_followups(batch_size=2)
                while int(Param.get_param(FOLLOWUP_CRON_CURSOR)):
                    self.Engine._cron_run_followups(batch_size=2)
                self._stamp(datetime(2026, 11, 30, 9))
            self.assertFalse(calls)
            self.assertTrue(Param.get_param(FOLLOWUP_CRON_LAST_RUN))
            self.assertEqual(
                self._logs(self.renewal, partner_id=late.id).outcome, "done"
            )
            with freeze_time("2026-12-01 09:00:00"):
                # The next one: what changed, in one call.
                other = self.population[4]
                other.subscription_end_date = date(2026, 12, 5)
                self._stamp(datetime(2026, 12, 1, 9))
                self.Engine._cron_run_followups(batch_size=2)
            # Once per company with rules, within the one call.
            self.assertTrue(calls)
            self.assertFalse(int(Param.get_param(FOLLOWUP_CRON_CURSOR)))
        # Its renewal call (due on 11/25, within nobody's window since) came.
        self.assertEqual(self._logs(self.renewal, partner_id=other.id).outcome, "done")

    def test_a_full_pass_comes_back_every_week(self):
        """What the changes cannot show (a deleted sign of life) is caught up
        by the full pass a week after the last one; the passes between read
        what changed."""
        Param = self.env["ir.config_parameter"].sudo()
        self._stamp(datetime(2026, 11, 29, 9), everything=True)

        def run_pass():
            self.Engine._cron_run_followups(batch_size=2)
            batched = bool(int(Param.get_param(FOLLOWUP_CRON_CURSOR)))
            while int(Param.get_param(FOLLOWUP_CRON_CURSOR)):
                self.Engine._cron_run_followups(batch_size=2)
            return batched

        with self._changed_reads() as calls:
            with freeze_time("2026-11-30 09:00:00"):
                self.assertTrue(run_pass())
            self.assertFalse(calls)
            for day in range(1, 7):
                with freeze_time(datetime(2026, 11, 30, 9) + timedelta(days=day)):
                    self.assertFalse(run_pass(), f"day {day}")
            self.assertTrue(calls)
            count = len(calls)
            with freeze_time("2026-12-07 09:00:00"):
                # A week after the last full pass: every contact, in batches.
                self.assertTrue(run_pass())
            self.assertEqual(len(calls), count)
            with freeze_time("2026-12-08 09:00:00"):
                self.assertFalse(run_pass())
            self.assertGreater(len(calls), count)

    def test_a_salesperson_moved_marks_the_contacts_changed(self):
        """A shared contact is followed up in its salesperson's company:
        moving the salesperson to another company changes its follow-ups,
        seen by the next pass."""
        self._stamp(datetime(2026, 11, 29, 9), everything=True)
        rules = self.env["partner.followup.rule"].search([])
        message = self.env["mail.message"].search([], order="id desc", limit=1)
        contact = self.population[0]
        self.assertEqual(contact.user_id, self.salesman)

        def changed():
            self.env.flush_all()
            return self.Engine._changed_partner_ids(
                rules, datetime(2026, 11, 30, 9), message.id, (0, MAX_ID)
            )

        self.assertNotIn(contact.id, changed())
        self.salesman.write(
            {
                "company_ids": [(4, self.other_company.id)],
                "company_id": self.other_company.id,
            }
        )
        self.assertIn(contact.id, changed())

    def test_a_calendar_written_is_detected_in_full(self):
        """The working days come from the company's calendar: a pass after
        it was written detects every contact again, in one call."""
        self._stamp(datetime(2026, 11, 29, 9), everything=True)
        with self._changed_reads() as calls:
            with freeze_time("2026-11-30 09:00:00"):
                self.Engine._cron_run_followups(batch_size=10000)
            with freeze_time("2026-12-01 09:00:00"):
                self.Engine._cron_run_followups(batch_size=10000)
            self.assertTrue(calls)
            count = len(calls)
            self.env.company.resource_calendar_id.write({"name": "Moved hours"})
            with freeze_time("2026-12-02 09:00:00"):
                self.Engine._cron_run_followups(batch_size=10000)
            self.assertEqual(len(calls), count)
            with freeze_time("2026-12-03 09:00:00"):
                # The calendar's change, the past of the last pass.
                self._stamp(datetime(2026, 12, 1, 9))
                self.Engine._cron_run_followups(batch_size=10000)
            self.assertGreater(len(calls), count)
