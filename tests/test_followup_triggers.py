# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime

from freezegun import freeze_time

from odoo.tests import tagged

from .followup_common import FollowupCommon


@tagged("post_install", "-at_install")
class TestFollowupTriggers(FollowupCommon):
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
        cls.subscription = cls.env["product.product"].create(
            {
                "name": "Yearly subscription",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
            }
        )

    # Quotations ---------------------------------------------------------

    def test_quote_chase_due_six_working_days_later_across_a_weekend(self):
        # Sent on Friday 2026-11-20: 6 working days later is Monday 30.
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-27 10:00:00"):
            self._run()
        self.assertFalse(self._followup_activities(order))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._followup_activities(order),
            [
                {
                    "summary": "Chase the quotation",
                    "user_id": self.salesman.id,
                    "date_deadline": date(2026, 11, 30),
                    "automated": True,
                }
            ],
        )
        self.assertRecordValues(
            self._logs(self.chase),
            [
                {
                    "step_id": self.chase.step_ids[0].id,
                    "res_model": "sale.order",
                    "res_id": order.id,
                    "partner_id": self.customer.id,
                    "outcome": "done",
                    "due_date": date(2026, 11, 30),
                    "user_id": self.salesman.id,
                }
            ],
        )

    def test_quote_chase_skips_a_public_holiday(self):
        self.env["resource.calendar.leaves"].create(
            {
                "name": "Public holiday",
                "calendar_id": self.calendar.id,
                "date_from": datetime(2026, 11, 24, 23, 0),
                "date_to": datetime(2026, 11, 25, 22, 59),
            }
        )
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        self.assertFalse(self._followup_activities(order))
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.assertEqual(self._logs(self.chase).due_date, date(2026, 12, 1))

    def test_quote_chase_second_step_thirteen_working_days_later(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        with freeze_time("2026-12-08 10:00:00"):
            self._run()
        self.assertEqual(len(self._followup_activities(order)), 1)
        with freeze_time("2026-12-09 10:00:00"):
            self._run()
        self.assertEqual(
            self._logs(self.chase).mapped("step_id.name"), ["Chase +6", "Chase +13"]
        )
        self.assertEqual(len(self._followup_activities(order)), 2)

    def test_confirmed_quotation_is_not_chased(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        order.action_confirm()
        with freeze_time("2026-12-10 10:00:00"):
            self._run()
        self.assertFalse(self._logs(self.chase))

    def test_confirming_the_quotation_cancels_its_pending_chase(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        self.assertTrue(self._followup_activities(order))
        order.action_confirm()
        # Not within the confirmation: the lifecycle queue's job does it.
        self.assertTrue(self._followup_activities(order))
        self._process_lifecycle_queue()
        self.assertFalse(self._followup_activities(order))
        self.assertIn(
            "Follow-up activities cancelled",
            order.message_ids[:3].mapped("body")[0]
            + "".join(order.message_ids[:3].mapped("body")),
        )

    def test_cancelling_the_quotation_cancels_its_pending_chase(self):
        order = self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        order._action_cancel()
        self._process_lifecycle_queue()
        self.assertFalse(self._followup_activities(order))
        with freeze_time("2026-12-10 10:00:00"):
            self._run()
        self.assertEqual(len(self._logs(self.chase)), 1)

    def test_sending_a_quotation_wakes_the_cron_when_its_chase_falls_due(self):
        cron = self.env.ref("sale_referral_lifecycle.ir_cron_partner_followup")
        before = self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)])
        with freeze_time("2026-11-20 10:00:00"):
            self._send_quotation(self.customer, datetime(2026, 11, 20, 10))
            # Computed by the lifecycle queue's job, once per transaction,
            # when it commits.
            self._process_lifecycle_queue()
            self.env.cr.precommit.run()
        triggers = (
            self.env["ir.cron.trigger"].search([("cron_id", "=", cron.id)]) - before
        )
        # 06:00 in Brussels on Monday 30 (6 working days) and December 9.
        self.assertIn(datetime(2026, 11, 30, 5, 0), triggers.mapped("call_at"))
        self.assertIn(datetime(2026, 12, 9, 5, 0), triggers.mapped("call_at"))

    # Orders ---------------------------------------------------------------

    def test_cocooning_call_eight_days_after_the_first_order(self):
        rule = self._rule(
            "order_confirmed",
            [("Cocooning +8", 8, self.order_plan, None)],
            delay_type="calendar",
        )
        with freeze_time("2026-11-20 10:00:00"):
            order = self._confirm_order(self.customer)
        with freeze_time("2026-11-27 10:00:00"):
            self._run()
        self.assertFalse(self._logs(rule))
        with freeze_time("2026-11-28 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(rule), [{"res_id": order.id, "due_date": date(2026, 11, 28)}]
        )
        # A Saturday: the call is planned on Monday.
        self.assertEqual(
            self._followup_activities(order).date_deadline, date(2026, 11, 30)
        )

    def test_cocooning_only_after_the_first_order(self):
        rule = self._rule(
            "order_confirmed",
            [("Cocooning +8", 8, self.order_plan, None)],
            delay_type="calendar",
        )
        with freeze_time("2026-11-02 10:00:00"):
            first = self._confirm_order(self.customer)
        with freeze_time("2026-11-10 10:00:00"):
            second = self._confirm_order(self.customer)
        with freeze_time("2026-11-20 10:00:00"):
            self._run()
        self.assertEqual(self._logs(rule).mapped("res_id"), [first.id])
        rule.first_order_only = False
        with freeze_time("2026-11-20 10:00:00"):
            self._run()
        self.assertEqual(
            sorted(self._logs(rule).mapped("res_id")), sorted([first.id, second.id])
        )

    # Subscriptions -------------------------------------------------------------

    def _renewal_rule(self):
        proposal = self.env.ref(
            "sale_referral_lifecycle.mail_template_followup_renewal_proposal"
        )
        return self._rule(
            "subscription_end",
            [
                ("Renewal -45", -45, None, proposal),
                ("Renewal -10", -10, self.partner_plan, None),
                ("Lapsed +7", 7, self.partner_plan, None),
            ],
            delay_type="calendar",
            name="Renewal",
        )

    def test_renewal_proposal_email_45_days_before_the_end(self):
        rule = self._renewal_rule()
        self.customer.subscription_end_date = date(2027, 1, 15)
        with freeze_time("2026-11-30 10:00:00"):
            self._run()
        self.assertFalse(self._logs(rule))
        with freeze_time("2026-12-01 10:00:00"):
            self._run()
        self.assertRecordValues(
            self._logs(rule),
            [{"step_id": rule.step_ids[0].id, "occurrence": "2027-01-15"}],
        )
        mail = self.env["mail.mail"].search(
            [("model", "=", "res.partner"), ("res_id", "=", self.customer.id)]
        )
        self.assertEqual(len(mail), 1)
        self.assertIn("15", mail.subject)
        self.assertIn(self.customer, mail.recipient_ids)

    def test_renewal_call_ten_days_before_and_lapsed_call_seven_days_after(self):
        rule = self._renewal_rule()
        self.customer.subscription_end_date = date(2027, 1, 15)
        with freeze_time("2027-01-05 10:00:00"):
            self._run()
        self.assertEqual(
            self._logs(rule).mapped("step_id.name"), ["Renewal -45", "Renewal -10"]
        )
        # The proposal went today: the call waits for the gap.
        self.assertEqual(self._logs(rule).mapped("outcome"), ["done", "postponed"])
        with freeze_time("2027-01-07 10:00:00"):
            self._run()
        self.assertEqual(self._logs(rule).mapped("outcome"), ["done", "done"])
        with freeze_time("2027-01-22 10:00:00"):
            self._run()
        self.assertEqual(self._logs(rule)[-1].step_id.name, "Lapsed +7")

    def test_a_renewal_ordered_cancels_the_remaining_renewal_steps(self):
        rule = self._renewal_rule()
        with freeze_time("2026-01-15 10:00:00"):
            self._confirm_order(
                self.customer,
                order_line=[
                    (0, 0, {"product_id": self.subscription.id, "product_uom_qty": 1})
                ],
            )
        end = self.customer.subscription_end_date
        self.assertEqual(end, date(2027, 1, 15))
        self.company.followup_min_gap_days = 0
        with freeze_time("2027-01-05 10:00:00"):
            self._run()
            self.assertTrue(self._followup_activities(self.customer))
            self._confirm_order(
                self.customer,
                order_line=[
                    (0, 0, {"product_id": self.subscription.id, "product_uom_qty": 1})
                ],
            )
        self.assertEqual(self.customer.subscription_end_date, date(2028, 1, 15))
        self.assertFalse(self._followup_activities(self.customer))
        with freeze_time("2027-01-22 10:00:00"):
            self._run()
        self.assertNotIn("Lapsed +7", self._logs(rule).mapped("step_id.name"))

    # Stages, referrals, dormant contacts -------------------------------------

    def test_entering_a_stage_fires_once_per_entry(self):
        fan = self.env.ref("sale_referral_lifecycle.stage_fan")
        rule = self._rule(
            "stage_entered",
            [("Ask for a testimonial", 0, self.partner_plan, None)],
            stage_ids=[(6, 0, fan.ids)],
        )
        self.customer.lifecycle_stage_id = fan
        self._run()
        self._run()
        self.assertEqual(len(self._logs(rule)), 1)
        self.customer.lifecycle_stage_id = self.env.ref(
            "sale_referral_lifecycle.stage_client"
        )
        self._run()
        self.assertEqual(len(self._logs(rule)), 1)

    def test_new_referral_form_launches_the_plan_once_and_logs_the_rule(self):
        rule = self.env.ref(
            "sale_referral_lifecycle.partner_followup_rule_referral_new"
        )
        rule.active = True
        referral = self._refer()
        self.assertEqual(len(referral.activity_ids), 2)
        logs = self._logs(rule, res_model="referral.referral", res_id=referral.id)
        self.assertRecordValues(
            logs, [{"outcome": "done", "partner_id": referral.referee_id.id}]
        )
        self.assertEqual(referral.activity_ids.followup_log_id, logs)
        self._run()
        self.assertEqual(len(referral.activity_ids), 2)
        self.assertEqual(
            self._logs(rule, res_model="referral.referral", res_id=referral.id), logs
        )

    def test_new_referral_rule_with_its_own_plan_fires_with_the_cron(self):
        plan = self._plan("referral.referral", "Send a welcome pack")
        rule = self._rule("referral_new", [("Welcome pack", 0, plan, None)])
        referral = self._refer()
        self.assertEqual(len(referral.activity_ids), 2)
        self._run()
        self.assertEqual(
            sorted(referral.activity_ids.mapped("summary")),
            ["Call the prospect", "Call the sponsor", "Send a welcome pack"],
        )
        self.assertEqual(self._logs(rule).partner_id, referral.referee_id)

    def test_dormant_prospect_called_again_after_180_days(self):
        rule = self._rule(
            "dormant",
            [("Dormant 180", 180, self.partner_plan, None)],
            delay_type="calendar",
        )
        prospect = self._create_customer("Lukewarm Ltd", user_id=self.salesman.id)
        self._set_create_date(prospect, datetime(2026, 1, 5, 10))
        with freeze_time("2026-07-03 10:00:00"):
            self._run()
        self.assertNotIn(prospect.id, self._logs(rule).mapped("res_id"))
        with freeze_time("2026-07-04 10:00:00"):
            self._run()
        self.assertIn(prospect.id, self._logs(rule).mapped("res_id"))

    def test_a_done_activity_keeps_a_contact_out_of_dormancy(self):
        rule = self._rule(
            "dormant",
            [("Dormant 180", 180, self.partner_plan, None)],
            delay_type="calendar",
        )
        prospect = self._create_customer("Busy Ltd", user_id=self.salesman.id)
        self._set_create_date(prospect, datetime(2026, 1, 5, 10))
        with freeze_time("2026-05-01 10:00:00"):
            prospect.activity_schedule("mail.mail_activity_data_call").action_done()
        with freeze_time("2026-07-04 10:00:00"):
            self._run()
        self.assertNotIn(prospect.id, self._logs(rule).mapped("res_id"))
