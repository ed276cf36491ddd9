# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from contextlib import contextmanager
from datetime import datetime
from unittest.mock import patch

from freezegun import freeze_time

from odoo import fields
from odoo.tests import tagged

from ..models.lifecycle.partner_lifecycle_engine import (
    COMMERCIAL_ENTITY_DOMAIN,
    LIFECYCLE_CRON_CURSOR,
    LIFECYCLE_CRON_LAST_RUN,
)
from .common import ReferralCommon
from .lifecycle_common import legacy_stages

# Later than anything the database holds: rows written while installing or
# setting up the test are older than every run here.
START = datetime(2031, 1, 15, 10, 0, 0)


@tagged("post_install", "-at_install")
class TestPartnerLifecycleCron(ReferralCommon):
    """The nightly job recomputes only the contacts whose time windows or
    data changed since its last run."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ref = cls.env.ref
        cls.suspect = ref("sale_referral_lifecycle.stage_suspect")
        cls.client = ref("sale_referral_lifecycle.stage_client")
        cls.loyal = ref("sale_referral_lifecycle.stage_loyal")
        cls.fan = ref("sale_referral_lifecycle.stage_fan")
        cls.Engine = cls.env["partner.lifecycle.engine"]
        # Written against stages that move down at once, a Fan by its orders
        # alone and an Addict by 5 orders in 24 months and a subscription
        # (the waits, referrals, renewals and tenure: test_lifecycle_explained
        # and test_lifecycle_criteria).
        legacy_stages(cls.env)
        cls.Param = cls.env["ir.config_parameter"].sudo()
        with cls._at(START):
            cls.customer = cls._create_customer("Window Ltd")
            # Customers whose stages do not change with time passing.
            cls.others = cls.env["res.partner"].create(
                [{"name": f"Quiet {index}", "is_company": True} for index in range(3)]
            )
            for _index in range(3):
                cls._confirm_order(cls.customer)
            cls._confirm_order(cls.others[0]).date_order = datetime(2031, 1, 10, 10, 0)
            cls._process_lifecycle_queue()

    @classmethod
    @contextmanager
    def _at(cls, moment):
        """Run at ``moment``: Python's clock and the transaction's time (the
        write_date of what is written)."""
        with freeze_time(moment), patch.object(cls.env.cr, "now", lambda: moment):
            yield

    def _run(self, moment):
        """Run the nightly job to its end at ``moment``; return the ids of
        the contacts it recomputed."""
        Engine = self.env.registry["partner.lifecycle.engine"]
        recompute = Engine._recompute
        seen = []

        def spy(engine, partners):
            seen.extend(partners.ids)
            return recompute(engine, partners)

        with self._at(moment), patch.object(Engine, "_recompute", spy):
            while self.Engine._cron_recompute(batch_size=100000):
                pass
        return seen

    def _commercial_entity_ids(self):
        return (
            self.env["res.partner"]
            .with_context(active_test=False)
            .search(COMMERCIAL_ENTITY_DOMAIN)
            .ids
        )

    def test_first_run_is_a_full_pass(self):
        self.Param.set_param(LIFECYCLE_CRON_LAST_RUN, False)
        seen = self._run(datetime(2031, 1, 16, 2, 0))
        self.assertEqual(sorted(seen), sorted(self._commercial_entity_ids()))
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)
        self.assertEqual(
            self.Param.get_param(LIFECYCLE_CRON_LAST_RUN), "2031-01-16 02:00:00"
        )
        self.assertEqual(self.Param.get_param(LIFECYCLE_CRON_CURSOR), "0")
        # The next night: nothing changed, nothing recomputed.
        self.assertEqual(self._run(datetime(2031, 1, 17, 2, 0)), [])

    def test_order_leaving_the_window_moves_only_its_customer(self):
        self._run(datetime(2031, 1, 16, 2, 0))
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)
        self.assertEqual(self.others[0].lifecycle_stage_id, self.client)
        # Its only order left the 12-month window on the 10th: read again,
        # it stays a client.
        self.assertEqual(self._run(datetime(2032, 1, 11, 2, 0)), [self.others[0].id])
        self.assertEqual(self.others[0].lifecycle_stage_id, self.client)
        # The customer's orders are 12 months old at 10:00: still in Fan's
        # window.
        self.assertEqual(self._run(datetime(2032, 1, 15, 2, 0)), [])
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)
        seen = self._run(datetime(2032, 1, 16, 2, 0))
        self.assertEqual(seen, [self.customer.id])
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        self.assertRecordValues(
            self.customer.lifecycle_history_ids[:1],
            [{"from_stage_id": self.fan.id, "to_stage_id": self.loyal.id}],
        )
        self.assertEqual(self.others[0].lifecycle_stage_id, self.client)

    def test_queries_do_not_grow_with_unchanged_contacts(self):
        self._run(datetime(2031, 1, 16, 2, 0))
        self.env.flush_all()
        self.env.invalidate_all()
        # 2 of them the savepoint a concurrent write rolls the call back to,
        # 1 the JIT compilation turned off for the call's transaction.
        with self.assertQueryCount(19):
            self.assertEqual(self._run(datetime(2031, 1, 17, 2, 0)), [])
        with self._at(datetime(2031, 1, 17, 12, 0)):
            more = self.env["res.partner"].create(
                [
                    {"name": f"Unchanged {index}", "is_company": True}
                    for index in range(40)
                ]
            )
            for partner in more[:10]:
                self._confirm_order(partner)
            self._process_lifecycle_queue()
        self._run(datetime(2031, 1, 18, 2, 0))
        self.env.flush_all()
        self.env.invalidate_all()
        with self.assertQueryCount(19):
            self.assertEqual(self._run(datetime(2031, 1, 19, 2, 0)), [])

    def test_batched_pass_runs_without_jit(self):
        # The planner overestimates the aggregate query and would compile
        # it in each batch: the cron's transaction runs without JIT.
        self.env.cr.execute("SET LOCAL jit = on")
        self._run(datetime(2031, 1, 16, 2, 0))
        self.env.cr.execute("SHOW jit")
        self.assertEqual(self.env.cr.fetchone()[0], "off")

    def test_days_since_last_order_threshold(self):
        active = self.env["partner.lifecycle.stage"].create(
            {
                "name": "Active client",
                "sequence": 35,
                "min_order_count": 1,
                "max_days_since_last_order": 30,
                "min_days_before_down": 0,
            }
        )
        self._run(datetime(2031, 1, 16, 2, 0))
        self.assertEqual(self.others[0].lifecycle_stage_id, active)
        self.assertEqual(self._run(datetime(2031, 2, 9, 2, 0)), [])
        self.assertEqual(self.others[0].lifecycle_stage_id, active)
        # Its last order is 30 days old at 10:00 on the 9th.
        self.assertEqual(self._run(datetime(2031, 2, 10, 2, 0)), [self.others[0].id])
        self.assertEqual(self.others[0].lifecycle_stage_id, self.client)

    def test_subscription_ending(self):
        subscriber = self.env["partner.lifecycle.stage"].create(
            {
                "name": "Subscriber",
                "sequence": 70,
                "require_active_subscription": True,
                "min_days_before_down": 0,
            }
        )
        product = self.env["product.product"].create(
            {"name": "Half year", "type": "service", "subscription_months": 6}
        )
        with self._at(START):
            order = self._create_order(self.others[1])
            order.order_line.product_id = product
            order.action_confirm()
            self._process_lifecycle_queue()
        self._run(datetime(2031, 1, 16, 2, 0))
        self.assertEqual(self.others[1].lifecycle_stage_id, subscriber)
        self.assertEqual(
            self.others[1].subscription_end_date, fields.Date.to_date("2031-07-15")
        )
        self.assertEqual(self._run(datetime(2031, 7, 14, 2, 0)), [])
        seen = self._run(datetime(2031, 7, 17, 2, 0))
        self.assertEqual(seen, [self.others[1].id])
        self.assertEqual(self.others[1].lifecycle_stage_id, self.client)

    def test_contact_edited_since_the_last_run(self):
        belgian = self.env["partner.lifecycle.stage"].create(
            {
                "name": "Belgian",
                "sequence": 70,
                "partner_domain": "[('country_id.code', '=', 'BE')]",
            }
        )
        self._run(datetime(2031, 1, 16, 2, 0))
        with self._at(datetime(2031, 1, 16, 15, 0)):
            self.others[2].country_id = self.env.ref("base.be")
        seen = self._run(datetime(2031, 1, 17, 2, 0))
        self.assertEqual(seen, [self.others[2].id])
        self.assertEqual(self.others[2].lifecycle_stage_id, belgian)
        # Its move by the job is no change for the next night.
        self.assertEqual(self._run(datetime(2031, 1, 18, 2, 0)), [])

    def test_order_written_since_the_last_run(self):
        self._run(datetime(2031, 1, 16, 2, 0))
        with self._at(datetime(2031, 1, 16, 15, 0)):
            self._create_order(self.others[1])
        self.assertEqual(self._run(datetime(2031, 1, 17, 2, 0)), [self.others[1].id])

    def test_stage_criteria_edit_forces_a_full_pass(self):
        self._run(datetime(2031, 1, 16, 2, 0))
        self.assertEqual(self._run(datetime(2031, 1, 17, 2, 0)), [])
        self.client.with_user(self.sale_manager).description = "Bought once"
        self.assertEqual(self._run(datetime(2031, 1, 18, 2, 0)), [])
        self.loyal.with_user(self.sale_manager).min_order_count = 4
        self.assertFalse(self.Param.get_param(LIFECYCLE_CRON_LAST_RUN))
        seen = self._run(datetime(2031, 1, 19, 2, 0))
        self.assertEqual(sorted(seen), sorted(self._commercial_entity_ids()))
        self.assertEqual(
            self.Param.get_param(LIFECYCLE_CRON_LAST_RUN), "2031-01-19 02:00:00"
        )

    def test_full_pass_in_batches_then_changes_only(self):
        self.Param.set_param(LIFECYCLE_CRON_LAST_RUN, False)
        total = len(self._commercial_entity_ids())
        with self._at(datetime(2031, 1, 16, 2, 0)):
            remaining = self.Engine._cron_recompute(batch_size=2)
            self.assertEqual(remaining, total - 2)
            self.assertFalse(self.Param.get_param(LIFECYCLE_CRON_LAST_RUN))
            # The legacy entry point of old databases' scheduled action.
            while remaining:
                remaining = self.env["res.partner"]._cron_recompute_lifecycle_stages(
                    batch_size=50
                )
        self.assertEqual(
            self.Param.get_param(LIFECYCLE_CRON_LAST_RUN), "2031-01-16 02:00:00"
        )
        with self._at(datetime(2031, 1, 16, 15, 0)):
            self.others[1:].write({"comment": "Called"})
        with self._at(datetime(2031, 1, 17, 2, 0)):
            self.assertEqual(self.Engine._cron_recompute(batch_size=1), 1)
            self.assertEqual(
                self.Param.get_param(LIFECYCLE_CRON_CURSOR), str(self.others[1].id)
            )
        self.assertEqual(self._run(datetime(2031, 1, 17, 2, 5)), [self.others[2].id])
        self.assertEqual(self.Param.get_param(LIFECYCLE_CRON_CURSOR), "0")
