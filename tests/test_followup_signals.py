# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Opportunistic follow-ups: a signal of the customer (the quotation viewed
online, a visit of the referral or wallet pages after days away, the
sponsor's link visited) calls within the hour, once per signal, in the
gap and priority of the other rules."""

from datetime import date, datetime

from freezegun import freeze_time

from odoo.tests import HttpCase, tagged

from .followup_common import FollowupCommon
from .test_portal_referral import PortalCommon


@tagged("post_install", "-at_install")
class TestFollowupSignals(FollowupCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Signal = cls.env["partner.followup.signal"]
        cls.viewed = cls._rule(
            "signal",
            [("Call now", 0, cls.order_plan, None)],
            name="Viewed: call now",
            kind="opportunistic",
            signal_type="quote_viewed",
            sequence=2,
        )
        cls.cron = cls.env.ref(
            "sale_referral_lifecycle.ir_cron_partner_followup_signal"
        )

    def _view_quotation(self, order):
        """What the portal posts when the customer opens the quotation."""
        order.sudo().message_post(
            author_id=order.partner_id.id,
            body="Quotation viewed by customer",
            message_type="notification",
            subtype_xmlid="sale.mt_order_viewed",
        )

    def _triggers(self):
        return self.env["ir.cron.trigger"].search([("cron_id", "=", self.cron.id)])

    def test_quotation_viewed_calls_within_the_hour_once(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        before = self._triggers()
        with freeze_time("2026-11-23 14:00:00"):
            self._view_quotation(order)
            self.env.cr.precommit.run()
            signal = self.Signal.search([("res_id", "=", order.id)])
            self.assertRecordValues(
                signal,
                [
                    {
                        "signal_type": "quote_viewed",
                        "partner_id": self.customer.id,
                        "res_model": "sale.order",
                    }
                ],
            )
            calls = (self._triggers() - before).mapped("call_at")
            self.assertTrue(calls)
            self.assertLessEqual(max(calls), datetime(2026, 11, 23, 15, 0))
            self.Engine._cron_run_signals()
            self.Engine._cron_run_signals()
        self.assertRecordValues(
            self._logs(self.viewed),
            [{"res_id": order.id, "occurrence": str(signal.id), "outcome": "done"}],
        )
        self.assertEqual(len(self._followup_activities(order)), 1)
        self.assertEqual(self._followup_activities(order).user_id, self.salesman)

    def test_quotation_viewed_once_confirmed_calls_nobody(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-23 14:00:00"):
            self._view_quotation(order)
            order.action_confirm()
            self.Engine._cron_run_signals()
        self.assertFalse(self._logs(self.viewed))

    def test_signal_respects_the_gap_after_a_systematic_followup(self):
        renewal = self._rule(
            "subscription_end",
            [("Renewal call", -10, self.partner_plan, None)],
            name="Renewal",
            sequence=5,
            delay_type="calendar",
        )
        self.customer.subscription_end_date = date(2026, 12, 3)
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-23 05:00:00"):
            self._run()  # the nightly run: the renewal call
        self.assertEqual(self._logs(renewal).outcome, "done")
        with freeze_time("2026-11-23 14:00:00"):
            self._view_quotation(order)
            self.Engine._cron_run_signals()
        self.assertRecordValues(
            self._logs(self.viewed),
            [{"outcome": "postponed", "scheduled_date": date(2026, 11, 25)}],
        )

    def test_signal_takes_the_place_of_a_lower_priority_systematic_step(self):
        renewal = self._rule(
            "subscription_end",
            [("Renewal call", -10, self.partner_plan, None)],
            name="Renewal",
            sequence=5,
            delay_type="calendar",
        )
        self.customer.subscription_end_date = date(2026, 12, 3)
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-23 05:00:00"):
            self._view_quotation(order)
            self._run()
        self.assertEqual(self._logs(self.viewed).outcome, "done")
        self.assertEqual(self._logs(renewal).outcome, "postponed")
        self.assertIn("Viewed: call now", self._logs(renewal).reason)

    def test_came_back_after_days_away(self):
        back = self._rule(
            "signal",
            [("Welcome back", 0, self.partner_plan, None)],
            name="Came back",
            signal_type="came_back",
            signal_days=30,
        )
        with freeze_time("2026-09-01 10:00:00"):
            first = self.Signal._record(
                "visit", self.customer, self.company, page="wallet"
            )
            # The same page the same day: one signal.
            self.assertFalse(
                self.Signal._record("visit", self.customer, self.company, page="wallet")
            )
        with freeze_time("2026-09-10 10:00:00"):
            soon = self.Signal._record(
                "visit", self.customer, self.company, page="referrals"
            )
            self.Engine._cron_run_signals()
        with freeze_time("2026-11-02 10:00:00"):
            late = self.Signal._record(
                "visit", self.customer, self.company, page="referrals"
            )
            self.Engine._cron_run_signals()
            self.Engine._cron_run_signals()
        self.assertEqual((first.days_away, soon.days_away, late.days_away), (0, 9, 53))
        self.assertEqual(self._logs(back).mapped("occurrence"), [str(late.id)])


@tagged("post_install", "-at_install")
class TestFollowupSignalsPortal(PortalCommon, HttpCase):
    def test_portal_pages_and_link_record_signals_once_a_day(self):
        Signal = self.env["partner.followup.signal"]
        self.authenticate("portal_sponsor", "portal_sponsor")
        for _ in range(2):
            self.assertEqual(self.url_open("/my/referrals").status_code, 200)
            self.assertEqual(self.url_open("/my/wallet").status_code, 200)
        visits = Signal.search([("partner_id", "=", self.sponsor.id)])
        self.assertEqual(sorted(visits.mapped("page")), ["referrals", "wallet"])
        self.authenticate(None, None)
        url = f"/r/{self.sponsor.referral_code}"
        for _ in range(2):
            self.assertEqual(self.url_open(url).status_code, 200)
        self.assertEqual(
            len(
                Signal.search(
                    [
                        ("partner_id", "=", self.sponsor.id),
                        ("signal_type", "=", "link_visit"),
                    ]
                )
            ),
            1,
        )
