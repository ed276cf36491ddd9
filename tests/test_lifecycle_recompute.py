# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields
from odoo.exceptions import UserError
from odoo.tests import tagged

from ..models.lifecycle.partner_lifecycle_engine import LIFECYCLE_CRON_CURSOR
from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestPartnerLifecycleRecompute(ReferralCommon):
    """Stage edits move contacts at once, not the next night."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.cron = cls.env.ref(
            "sale_referral_lifecycle.ir_cron_recompute_lifecycle_stages"
        )
        cls.stage = cls.env.ref("sale_referral_lifecycle.stage_loyal")
        cls.Param = cls.env["ir.config_parameter"].sudo()
        cls.customer = cls._create_customer("Lifecycle Now Ltd")

    def _triggers(self):
        return self.env["ir.cron.trigger"].search(
            [("cron_id", "=", self.cron.id), ("call_at", "<=", fields.Datetime.now())]
        )

    def test_recompute_now_runs_the_batched_job_from_the_first_contact(self):
        self.Param.set_param(LIFECYCLE_CRON_CURSOR, 123)
        before = self._triggers()
        action = self.stage.with_user(self.sale_manager).action_recompute_now()
        self.assertEqual(action["tag"], "display_notification")
        self.assertIn("in batches", action["params"]["message"])
        self.assertEqual(self.Param.get_param(LIFECYCLE_CRON_CURSOR), "0")
        self.assertTrue(self._triggers() - before)

    def test_recompute_now_refused_to_salespeople(self):
        self.Param.set_param(LIFECYCLE_CRON_CURSOR, 123)
        before = self._triggers()
        with self.assertRefused(UserError, "Only sales administrators"):
            self.stage.with_user(self.salesman).action_recompute_now()
        self.assertEqual(self.Param.get_param(LIFECYCLE_CRON_CURSOR), "123")
        self.assertEqual(self._triggers(), before)

    def test_recompute_now_refused_when_the_job_is_archived(self):
        self.cron.active = False
        with self.assertRefused(UserError, "archived or deleted"):
            self.stage.with_user(self.sale_manager).action_recompute_now()

    def test_saving_criteria_recomputes_at_once(self):
        self._confirm_order(self.customer)
        self._process_lifecycle_queue()
        client = self.env.ref("sale_referral_lifecycle.stage_client")
        self.assertEqual(self.customer.lifecycle_stage_id, client)
        before = self._triggers()
        self.stage.with_user(self.sale_manager).description = "Loyal"
        self.assertEqual(self._triggers(), before)
        self.stage.with_user(self.sale_manager).min_order_count = 1
        self.assertTrue(self._triggers() - before)
        # What the triggered job does: the contact moves with the new rule,
        # no order needed.
        self.cron.method_direct_trigger()
        self.assertEqual(self.customer.lifecycle_stage_id, self.stage)

    def test_unlock_stage_logs_the_move_once(self):
        self._confirm_order(self.customer)
        fan = self.env.ref("sale_referral_lifecycle.stage_fan")
        self.customer.lifecycle_stage_id = fan
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.customer.action_unlock_lifecycle_stage()
        self.env.flush_all()
        self.env.cr.precommit.run()
        moves = self.customer.message_ids.tracking_value_ids.filtered(
            lambda t: t.field_id.name == "lifecycle_stage_id"
            and t.old_value_char == fan.name
        )
        self.assertEqual(len(moves), 1)
        self.assertEqual(moves.new_value_char, "Client")
