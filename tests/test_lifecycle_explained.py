# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime

from freezegun import freeze_time

from odoo.tests import Form, tagged

from ..models.lifecycle.partner_lifecycle_engine import (
    LIFECYCLE_CRON_LAST_RUN,
)
from .lifecycle_common import LifecycleCommon


@tagged("post_install", "-at_install")
class TestLifecycleStability(LifecycleCommon):
    """Stable stages: a move down waits the stage's days before moving down;
    a company moving contacts only forward never moves them down; manual
    moves and locks as before."""

    def _loyal_customer(self, partner=None, company=None):
        """A Loyal client (2 orders) on 2026-03-01; returns its orders."""
        partner = partner or self.customer
        with freeze_time("2026-03-01 10:00:00"):
            orders = self._orders(partner, 2, company=company)
        self.assertEqual(self._stage_in(partner, company), self.loyal)
        return orders

    def _lapse(self, order, day="2026-03-02 10:00:00"):
        """The customer's criteria lapse on ``day``: an order cancelled."""
        with freeze_time(day):
            order._action_cancel()
            self._process_lifecycle_queue()

    def test_lapse_shorter_than_the_minimum_moves_nobody(self):
        orders = self._loyal_customer()
        self._lapse(orders[1])
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        self.assertEqual(
            self.customer.lifecycle_down_since, datetime(2026, 3, 2, 10, 0)
        )
        with freeze_time("2026-03-20 10:00:00"):
            # A new order 18 days later: the criteria hold again.
            self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        self.assertFalse(self.customer.lifecycle_down_since)
        with freeze_time("2026-05-01 10:00:00"):
            self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        # Never left: one history row (Suspect to Loyal client), no chatter.
        self.assertNotIn(self.loyal, self.customer.lifecycle_history_ids.from_stage_id)

    def test_lapse_longer_than_the_minimum_moves_down(self):
        orders = self._loyal_customer()
        self._lapse(orders[1])
        with freeze_time("2026-03-31 09:00:00"):
            self.customer._lifecycle_recompute()
            self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        with freeze_time("2026-04-01 11:00:00"):
            self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertFalse(self.customer.lifecycle_down_since)
        self.assertRecordValues(
            self.customer.lifecycle_history_ids.filtered(
                lambda h: h.from_stage_id == self.loyal
            ),
            [
                {
                    "from_stage_id": self.loyal.id,
                    "to_stage_id": self.client.id,
                    "automatic": True,
                }
            ],
        )

    def test_each_stage_its_minimum(self):
        self.loyal.min_days_before_down = 0
        orders = self._loyal_customer()
        self._lapse(orders[1])
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_lapse_of_a_week_on_a_seven_day_stage_moves(self):
        self.loyal.min_days_before_down = 7
        orders = self._loyal_customer()
        self._lapse(orders[1])
        with freeze_time("2026-03-08 09:00:00"):
            self.customer._lifecycle_recompute()
            self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        with freeze_time("2026-03-09 11:00:00"):
            self.customer._lifecycle_recompute()
            self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_nightly_job_moves_down_when_the_wait_is_over(self):
        orders = self._loyal_customer()
        self._lapse(orders[1])
        Engine = self.env["partner.lifecycle.engine"]
        Param = self.env["ir.config_parameter"]
        with freeze_time("2026-03-02 23:00:00"):
            while Engine._cron_recompute(batch_size=100000):
                pass
        self.assertTrue(Param.get_param(LIFECYCLE_CRON_LAST_RUN))
        with freeze_time("2026-04-02 23:00:00"):
            Engine._cron_recompute(batch_size=100000)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_only_forward_never_moves_down(self):
        self.company.lifecycle_move_back = "forward_only"
        orders = self._loyal_customer()
        self._lapse(orders[1])
        self.assertFalse(self.customer.lifecycle_down_since)
        with freeze_time("2027-01-01 10:00:00"):
            self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        # Forward still.
        with freeze_time("2027-01-02 10:00:00"):
            self._orders(self.customer, 3)
            self._refer(sponsor=self.customer)
            self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)

    def test_only_forward_is_per_company(self):
        self.other_company.lifecycle_move_back = "forward_only"
        orders = self._loyal_customer()
        other = self._loyal_customer(company=self.other_company)
        self._lapse(orders[1], "2026-03-02 10:00:00")
        self._lapse(other[1], "2026-03-02 10:00:00")
        with freeze_time("2026-06-01 10:00:00"):
            self.customer._lifecycle_recompute()
        self.assertEqual(self._stage_in(self.customer), self.client)
        self.assertEqual(self._stage_in(self.customer, self.other_company), self.loyal)

    def test_switching_to_only_forward_schedules_a_full_pass(self):
        Param = self.env["ir.config_parameter"]
        Param.set_param(LIFECYCLE_CRON_LAST_RUN, "2026-01-01 00:00:00")
        self.company.lifecycle_move_back = "forward_only"
        self.assertFalse(Param.get_param(LIFECYCLE_CRON_LAST_RUN))

    def test_locked_contact_neither_waits_nor_moves(self):
        orders = self._loyal_customer()
        self.customer.lifecycle_stage_id = self.loyal
        self.assertTrue(self.customer.lifecycle_stage_locked)
        self._lapse(orders[1])
        self.assertFalse(self.customer.lifecycle_down_since)
        with freeze_time("2026-06-01 10:00:00"):
            self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)

    def test_manual_move_ends_a_waiting_move_and_unlock_applies_at_once(self):
        orders = self._loyal_customer()
        self._lapse(orders[1])
        self.assertTrue(self.customer.lifecycle_down_since)
        with freeze_time("2026-03-05 10:00:00"):
            self.customer.lifecycle_stage_id = self.fan
        self.assertFalse(self.customer.lifecycle_down_since)
        self.assertTrue(self.customer.lifecycle_stage_locked)
        with freeze_time("2026-03-06 10:00:00"):
            self.customer.action_unlock_lifecycle_stage()
        # Unlocked: the stage of its criteria, at once, even lower.
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertFalse(self.customer.lifecycle_down_since)

    def test_archived_current_stage_holds_nobody(self):
        orders = self._loyal_customer()
        self.loyal.active = False
        self._lapse(orders[1])
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)


@tagged("post_install", "-at_install")
class TestLifecycleWhy(LifecycleCommon):
    """Why this stage, on the contact, per company; the stage form's dry run
    of a criteria change."""

    def test_why_lists_criteria_met_and_what_the_next_stage_needs(self):
        self.loyal.write({"min_revenue": 2000.0, "revenue_months": 12})
        self._orders(self.customer, 3)
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        met = self.customer.lifecycle_criteria_met
        self.assertIn("3 confirmed orders", met)
        self.assertIn("revenue in the last 12 months", met)
        self.assertIn("3,600.00", met)
        self.assertEqual(self.customer.lifecycle_next_stage_id, self.fan)
        self.assertEqual(
            self.customer.lifecycle_next_stage_missing, "a referral brought"
        )
        self.assertFalse(self.customer.lifecycle_down_warning)

    def test_why_counts_what_is_missing(self):
        self._orders(self.customer, 2)
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        self.assertEqual(
            self.customer.lifecycle_next_stage_missing.split("\n"),
            ["1 more order within 12 months", "a referral brought"],
        )

    def test_waiting_move_down_is_shown(self):
        with freeze_time("2026-03-01 10:00:00"):
            orders = self._orders(self.customer, 2)
        with freeze_time("2026-03-02 10:00:00"):
            orders[1]._action_cancel()
            self._process_lifecycle_queue()
            self.customer.invalidate_recordset()
            self.assertEqual(self.customer.lifecycle_down_date, date(2026, 4, 1))
            self.assertEqual(
                self.customer.lifecycle_down_warning,
                "Leaves Loyal client on 04/01/2026 unless: 1 more confirmed order",
            )

    def test_why_is_per_company(self):
        self._orders(self.customer, 2)
        self._orders(self.customer, 1, company=self.other_company)
        other = self.customer.with_company(self.other_company)
        self.assertEqual(other.lifecycle_stage_id, self.client)
        self.assertEqual(other.lifecycle_criteria_met, "1 confirmed order")
        self.assertEqual(other.lifecycle_next_stage_id, self.loyal)
        self.assertEqual(other.lifecycle_next_stage_missing, "1 more confirmed order")
        self.assertEqual(self.customer.lifecycle_next_stage_id, self.fan)

    def test_why_reads_no_query_per_contact(self):
        customers = self.env["res.partner"].create(
            [{"name": f"Why {i}", "is_company": True} for i in range(20)]
        )
        for customer in customers[:5]:
            self._orders(customer, 2)
        one = customers[:1]
        self.env.invalidate_all()
        with self.assertQueryCount(5):
            one.mapped("lifecycle_next_stage_missing")
        self.env.invalidate_all()
        with self.assertQueryCount(5):
            customers.mapped("lifecycle_next_stage_missing")

    def test_stage_form_dry_run_before_saving(self):
        regular = self._create_customer("Regular Ltd")
        top = self.env["partner.lifecycle.stage"].create(
            {
                "name": "Ambassador",
                "sequence": 1000,
                "min_order_count": 5,
                "partner_domain": repr([("id", "in", (self.customer | regular).ids)]),
            }
        )
        self._orders(self.customer, 3)
        self._orders(regular, 3)
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        with Form(top.with_user(self.sale_manager)) as form:
            self.assertFalse(form.dry_run_summary)
            form.min_order_count = 3
            self.assertIn(
                ": 2 contacts enter this stage, 0 leave it.", form.dry_run_summary
            )
            # Nothing written by the dry run.
            self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
            self.assertEqual(top.min_order_count, 5)
            form.min_order_count = 5
            self.assertFalse(form.dry_run_summary)
        top.min_order_count = 3
        (self.customer | regular)._lifecycle_recompute()
        self.assertEqual(regular.lifecycle_stage_id, top)
        with Form(top.with_user(self.sale_manager)) as form:
            form.min_order_count = 4
            self.assertIn(
                ": 0 contacts enter this stage, 2 leave it.", form.dry_run_summary
            )
            form.min_order_count = 3

    def test_dry_run_only_for_stage_managers(self):
        self._orders(self.customer, 3)
        for user, expected in ((self.salesman, False), (self.sale_manager, True)):
            # New records of the same origin share their cache.
            self.env.invalidate_all()
            stage = self.fan.with_user(user)
            edited = stage.new({"min_referral_count": 0}, origin=stage)
            self.assertEqual(bool(edited.dry_run_summary), expected)

    def test_contacts_leaving_their_stage_found_by_the_filter(self):
        with freeze_time("2026-03-01 10:00:00"):
            orders = self._orders(self.customer, 2)
            self._orders(self.sponsor, 1)
        with freeze_time("2026-03-02 10:00:00"):
            orders[1]._action_cancel()
            self._process_lifecycle_queue()
        leaving = self.env["res.partner"].search(
            [("lifecycle_down_since", "!=", False)]
        )
        self.assertIn(self.customer, leaving)
        self.assertNotIn(self.sponsor, leaving)
        self.assertNotIn(
            self.customer,
            self.env["res.partner"]
            .with_company(self.other_company)
            .search([("lifecycle_down_since", "!=", False)]),
        )

    def test_fan_explained_and_what_addict_needs(self):
        with freeze_time("2026-03-01 10:00:00"):
            self._orders(self.customer, 3)
            self._refer(sponsor=self.customer)
            self.customer._lifecycle_recompute()
            self.assertEqual(self.customer.lifecycle_stage_id, self.fan)
            self.customer.invalidate_recordset()
            self.assertEqual(
                self.customer.lifecycle_criteria_met.split("\n"),
                ["3 orders in the last 12 months", "1 referral brought"],
            )
            self.assertEqual(self.customer.lifecycle_next_stage_id, self.addict)
            self.assertEqual(
                self.customer.lifecycle_next_stage_missing.split("\n"),
                [
                    "a running subscription",
                    "24 more months as a customer",
                    "a renewal confirmed",
                ],
            )

    def test_upgrade_adding_the_figures_schedules_a_full_pass(self):
        Param = self.env["ir.config_parameter"]
        Param.set_param(LIFECYCLE_CRON_LAST_RUN, "2026-01-01 00:00:00")
        self.env["res.partner"]._init_column("lifecycle_window_figures")
        self.assertFalse(Param.get_param(LIFECYCLE_CRON_LAST_RUN))
