# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import datetime

from freezegun import freeze_time

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged

from ..models.lifecycle.partner_lifecycle_engine import (
    COMMERCIAL_ENTITY_DOMAIN,
    LIFECYCLE_CRON_CURSOR,
)
from .common import ReferralCommon
from .lifecycle_common import legacy_stages

# Queries of one recompute that moves its contacts (with chatter lines).
QUERIES = 9


@tagged("post_install", "-at_install")
class TestPartnerLifecycle(ReferralCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ref = cls.env.ref
        cls.suspect = ref("sale_referral_lifecycle.stage_suspect")
        cls.prospect = ref("sale_referral_lifecycle.stage_prospect")
        cls.client = ref("sale_referral_lifecycle.stage_client")
        cls.loyal = ref("sale_referral_lifecycle.stage_loyal")
        cls.fan = ref("sale_referral_lifecycle.stage_fan")
        cls.addict = ref("sale_referral_lifecycle.stage_addict")
        cls.subscription = cls.env["product.product"].create(
            {
                "name": "Yearly subscription",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
            }
        )
        cls.customer = cls._create_customer("Lifecycle Ltd")
        # Written against stages that move down at once, a Fan by its orders
        # alone and an Addict by 5 orders in 24 months and a subscription
        # (the waits, referrals, renewals and tenure: test_lifecycle_explained
        # and test_lifecycle_criteria).
        legacy_stages(cls.env)

    def _orders(self, partner, count, date=None, product=None):
        orders = self.env["sale.order"]
        for _i in range(count):
            order = self._create_order(partner)
            if product:
                order.order_line.product_id = product
            order.action_confirm()
            if date:
                order.date_order = date
            orders |= order
        self._process_lifecycle_queue()
        return orders

    def test_new_contact_is_suspect_after_recompute(self):
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.suspect)
        self.assertFalse(self.customer.lifecycle_stage_locked)

    def test_sent_quotation_makes_prospect(self):
        order = self._create_order(self.customer)
        order.action_quotation_sent()
        self._process_lifecycle_queue()
        self.assertEqual(order.state, "sent")
        self.assertEqual(self.customer.lifecycle_stage_id, self.prospect)
        self.assertEqual(self.customer.lifecycle_quotation_count, 1)

    def test_draft_quotation_is_not_enough_for_prospect(self):
        self._create_order(self.customer)
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.suspect)

    def test_confirmed_order_makes_client(self):
        self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertEqual(self.customer.lifecycle_order_count, 1)

    def test_order_of_a_contact_person_moves_its_company(self):
        person = self.env["res.partner"].create(
            {"name": "Lia", "parent_id": self.customer.id}
        )
        self._orders(person, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertFalse(person.lifecycle_stage_id)

    def test_two_orders_make_loyal_client(self):
        self._orders(self.customer, 2, date=datetime(2020, 1, 1))
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)

    def test_three_recent_orders_make_fan(self):
        self._orders(self.customer, 3)
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)

    def test_five_orders_without_subscription_stay_fan(self):
        self._orders(self.customer, 5)
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)

    def test_five_orders_with_subscription_make_addict(self):
        self._orders(self.customer, 4)
        self._orders(self.customer, 1, product=self.subscription)
        self.assertTrue(self.customer.subscription_end_date)
        self.assertEqual(self.customer.lifecycle_stage_id, self.addict)

    def test_subscription_end_extends_from_current_end(self):
        with freeze_time("2026-01-10"):
            self._orders(self.customer, 1, product=self.subscription)
        with freeze_time("2026-06-10"):
            self._orders(self.customer, 1, product=self.subscription)
        self.assertEqual(str(self.customer.subscription_end_date), "2028-01-10")

    def test_cancelled_order_moves_back(self):
        order = self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        order._action_cancel()
        self._process_lifecycle_queue()
        # It did receive a quotation: back to Prospect, not Suspect.
        self.assertEqual(self.customer.lifecycle_stage_id, self.prospect)

    def test_highest_sequence_stage_wins(self):
        self._orders(self.customer, 2, date=datetime(2020, 1, 1))
        self.client.sequence = 45
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_revenue_criterion(self):
        self.loyal.write(
            {"min_order_count": 0, "min_revenue": 2000.0, "revenue_months": 6}
        )
        self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self._orders(self.customer, 1, date=datetime(2020, 1, 1))
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)

    def test_max_days_since_last_order_criterion(self):
        self.loyal.max_days_since_last_order = 30
        self._orders(self.customer, 2, date=datetime(2020, 1, 1))
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertEqual(self.customer.lifecycle_last_order_date, datetime(2020, 1, 1))

    def test_extra_domain_criterion(self):
        self.prospect.partner_domain = "[('country_id.code', '=', 'BE')]"
        self.prospect.min_quotation_count = 0
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.suspect)
        self.customer.country_id = self.env.ref("base.be")
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.prospect)

    def test_invalid_extra_domain_refused(self):
        with self.assertRefused(ValidationError, "not a valid filter"):
            self.prospect.partner_domain = "[('no_such_field', '=', 1)]"
        self.assertEqual(self.prospect.partner_domain, "[]")

    def test_negative_minimum_refused(self):
        with self.assertRefused(ValidationError, "cannot be negative"):
            self.client.min_order_count = -1
        self.assertEqual(self.client.min_order_count, 1)
        with self.assertRefused(ValidationError, "at least 1"):
            self.fan.recent_order_months = 0

    def test_negative_subscription_refused(self):
        with self.assertRefused(ValidationError, "cannot be negative"):
            self.subscription.subscription_months = -3
        self.assertEqual(self.subscription.subscription_months, 12)

    def test_cron_moves_contacts_when_time_passes(self):
        with freeze_time("2026-01-15 10:00:00"):
            self._orders(self.customer, 3)
            self.assertEqual(self.customer.lifecycle_stage_id, self.fan)
        with freeze_time("2027-03-01 03:00:00"):
            self.env["partner.lifecycle.engine"]._cron_recompute(batch_size=100000)
            self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
            last = self.customer.lifecycle_history_ids[:1]
            self.assertRecordValues(
                last,
                [
                    {
                        "from_stage_id": self.fan.id,
                        "to_stage_id": self.loyal.id,
                        "automatic": True,
                    }
                ],
            )

    def test_cron_processes_batches_and_reports_remaining(self):
        Partner = self.env["res.partner"]
        Engine = self.env["partner.lifecycle.engine"]
        total = Partner.with_context(active_test=False).search_count(
            COMMERCIAL_ENTITY_DOMAIN
        )
        remaining = Engine._cron_recompute(batch_size=2)
        self.assertEqual(remaining, total - 2)
        first_two = Partner.with_context(active_test=False).search(
            COMMERCIAL_ENTITY_DOMAIN, limit=2, order="id"
        )
        self.assertEqual(
            self.env["ir.config_parameter"].get_param(LIFECYCLE_CRON_CURSOR),
            str(first_two[-1].id),
        )
        while remaining:
            remaining = Engine._cron_recompute(batch_size=50)
        self.assertEqual(self.customer.lifecycle_stage_id, self.suspect)
        # The pass is over: the next one starts from the first contact.
        self.assertEqual(
            self.env["ir.config_parameter"].get_param(LIFECYCLE_CRON_CURSOR), "0"
        )

    def _row_versions(self):
        """``{commercial entity id: ctid}``: an UPDATE gives a row a new ctid."""
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT id, ctid::text FROM res_partner WHERE parent_id IS NULL"
        )
        return dict(self.env.cr.fetchall())

    def test_cron_writes_only_contacts_that_change(self):
        Engine = self.env["partner.lifecycle.engine"]
        Engine._cron_recompute(batch_size=100000)
        self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        # As if its order came in while the recompute was off.
        self.env.cr.execute(
            "UPDATE res_partner SET lifecycle_stage_id = "
            "jsonb_build_object(%s::text, %s) WHERE id = %s",
            [self.env.company.id, self.suspect.id, self.customer.id],
        )
        self.env.invalidate_all()
        before = self._row_versions()
        Engine._cron_recompute(batch_size=100000)
        after = self._row_versions()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertEqual(
            {pid for pid, version in after.items() if before.get(pid) != version},
            {self.customer.id},
        )

    def test_manual_move_locks_and_records_history(self):
        self.customer._lifecycle_recompute()
        self.customer.with_user(self.salesman).lifecycle_stage_id = self.fan
        self.assertTrue(self.customer.lifecycle_stage_locked)
        self.assertRecordValues(
            self.customer.lifecycle_history_ids[:1],
            [
                {
                    "from_stage_id": self.suspect.id,
                    "to_stage_id": self.fan.id,
                    "automatic": False,
                    "user_id": self.salesman.id,
                }
            ],
        )
        self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)

    def test_unlock_recomputes(self):
        self._orders(self.customer, 1)
        self.customer.lifecycle_stage_id = self.addict
        self.customer.action_unlock_lifecycle_stage()
        self.assertFalse(self.customer.lifecycle_stage_locked)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_history_rows_for_each_move(self):
        order = self._create_order(self.customer)
        order.action_quotation_sent()
        self._process_lifecycle_queue()
        order.action_confirm()
        self._process_lifecycle_queue()
        history = self.customer.lifecycle_history_ids.sorted("id")
        # Suspect from its creation on.
        self.assertEqual(
            history.mapped("to_stage_id"), self.suspect | self.prospect | self.client
        )
        self.assertTrue(all(history.mapped("automatic")))

    def test_stage_change_tracked_in_chatter(self):
        self.customer._lifecycle_recompute()
        self._orders(self.customer, 1)
        tracked = self.customer.message_ids.tracking_value_ids.filtered(
            lambda t: t.field_id.name == "lifecycle_stage_id"
        )
        self.assertEqual(tracked[:1].new_value_char, "Client")

    def test_first_contact_from_first_quotation(self):
        medium = self.env["utm.medium"].create({"name": "Fair"})
        source = self.env["utm.source"].create({"name": "Spring fair"})
        order = self._create_order(
            self.customer, source_id=source.id, medium_id=medium.id
        )
        order.action_quotation_sent()
        self._process_lifecycle_queue()
        self.assertRecordValues(
            self.customer,
            [
                {
                    "first_contact_source_id": source.id,
                    "first_contact_medium_id": medium.id,
                }
            ],
        )
        self.assertTrue(self.customer.first_contact_date)

    def test_history_rows_follow_the_first_contact_channel(self):
        self.customer._lifecycle_recompute()
        source = self.env["utm.source"].create({"name": "Trade show"})
        self._create_order(self.customer, source_id=source.id).action_quotation_sent()
        self._process_lifecycle_queue()
        history = self.customer.lifecycle_history_ids
        self.assertEqual(history.to_stage_id, self.suspect | self.prospect)
        self.assertEqual([h.first_contact_source_id for h in history], [source] * 2)

    def test_referral_is_first_contact_of_referee(self):
        referee = self._refer().referee_id
        self.assertEqual(
            referee.first_contact_source_id,
            self.env.ref("sale_referral_lifecycle.utm_source_referral"),
        )
        self._orders(referee, 1)
        self.assertEqual(referee.lifecycle_converted, 100)
        self.assertEqual(referee.lifecycle_days_to_client, 0)

    def test_company_stage_applies_only_to_its_contacts(self):
        vip = self.env["partner.lifecycle.stage"].create(
            {"name": "VIP", "sequence": 100, "company_id": self.other_company.id}
        )
        foreign = self._create_customer("Foreign", company_id=self.other_company.id)
        (self.customer | foreign)._lifecycle_recompute()
        # Stages are per company: the contact of the other company is VIP
        # there, ours stays Suspect here.
        self.assertEqual(
            foreign.with_company(self.other_company).lifecycle_stage_id, vip
        )
        self.assertEqual(self.customer.lifecycle_stage_id, self.suspect)

    def test_company_stage_invisible_from_other_company(self):
        vip = self.env["partner.lifecycle.stage"].create(
            {"name": "VIP", "company_id": self.other_company.id}
        )
        stages = (
            self.env["partner.lifecycle.stage"].with_user(self.salesman_2).search([])
        )
        self.assertNotIn(vip, stages)
        self.assertIn(self.client, stages)

    def test_only_sales_administrators_edit_stages(self):
        with self.assertRaises(AccessError):
            self.client.with_user(self.salesman_all).name = "Customer"
        self.client.with_user(self.sale_manager).name = "Customer"
        self.assertEqual(self.client.name, "Customer")

    def test_admin_edits_criteria_in_form(self):
        with Form(self.loyal.with_user(self.sale_manager)) as stage:
            stage.min_order_count = 3
        self._orders(self.customer, 2, date=datetime(2020, 1, 1))
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_kanban_shows_every_stage(self):
        groups = self.env["res.partner"].read_group(
            [("id", "=", self.customer.id)],
            ["lifecycle_stage_id"],
            ["lifecycle_stage_id"],
        )
        stage_ids = [
            g["lifecycle_stage_id"][0] for g in groups if g["lifecycle_stage_id"]
        ]
        self.assertIn(self.addict.id, stage_ids)

    def test_recompute_query_count_does_not_grow_with_contacts(self):
        one = self._create_customer("One")
        many = self.env["res.partner"].create(
            [{"name": f"Many {i}", "is_company": True} for i in range(500)]
        )
        for partners in (one, many):
            partners._lifecycle_recompute()
            self.env["sale.order"].create(
                [
                    {
                        "partner_id": p.id,
                        "state": "sent",
                        "order_line": [(0, 0, {"product_id": self.product.id})],
                    }
                    for p in partners
                ]
            )
        # Stats, stage, history rows, chatter messages and tracking lines:
        # one statement each, whatever the number of contacts.
        self.env.invalidate_all()
        with self.assertQueryCount(__system__=QUERIES):
            one._lifecycle_recompute()
        self.env.invalidate_all()
        with self.assertQueryCount(__system__=QUERIES):
            many._lifecycle_recompute()
        self.assertEqual(set(many.mapped("lifecycle_stage_id")), {self.prospect})
        self.assertEqual(len(many.lifecycle_history_ids), 1000)

    def test_sales_analysis_by_stage_ranks_customers(self):
        small = self._create_customer("Small Buyer")
        self._orders(small, 1)
        self._orders(self.customer, 3)
        self.env.flush_all()
        groups = self.env["sale.report"]._read_group(
            [
                ("state", "=", "sale"),
                ("commercial_partner_id", "in", (small | self.customer).ids),
            ],
            ["lifecycle_stage_id", "commercial_partner_id"],
            ["price_subtotal:sum"],
            order="price_subtotal:sum desc",
        )
        self.assertEqual(
            [(stage, partner) for stage, partner, _total in groups],
            [(self.fan, self.customer), (self.client, small)],
        )

    def test_program_lets_chosen_stages_sponsor(self):
        self.program.write(
            {"sponsor_policy": "stages", "sponsor_stage_ids": [(6, 0, self.fan.ids)]}
        )
        with self.assertRefused(ValidationError, "may not sponsor"):
            self._refer(sponsor=self.customer)
        self._orders(self.customer, 3)
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)
        referral = self._refer(sponsor=self.customer)
        self.assertEqual(referral.sponsor_id, self.customer)

    def test_contact_matching_no_stage_keeps_its_stage(self):
        self._orders(self.customer, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.suspect.min_order_count = 5
        self.prospect.min_order_count = 5
        self.client.min_order_count = 5
        history = self.customer.lifecycle_history_ids
        self.customer._lifecycle_recompute()
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)
        self.assertEqual(self.customer.lifecycle_history_ids, history)
