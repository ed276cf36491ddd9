# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields
from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestPartnerLifecycleQueue(ReferralCommon):
    """Confirming an order queues its customer; the queue's job moves it."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Queue = cls.env["partner.lifecycle.queue"]
        cls.cron = cls.env.ref(
            "sale_referral_lifecycle.ir_cron_process_lifecycle_queue"
        )
        cls.suspect = cls.env.ref("sale_referral_lifecycle.stage_suspect")
        cls.client = cls.env.ref("sale_referral_lifecycle.stage_client")
        cls.customer = cls._create_customer("Queued Ltd")
        cls._process_lifecycle_queue()

    def _triggers(self):
        return self.env["ir.cron.trigger"].search(
            [("cron_id", "=", self.cron.id), ("call_at", "<=", fields.Datetime.now())]
        )

    def test_confirmation_queues_the_customer_and_wakes_the_job(self):
        before = self._triggers()
        self._create_order(self.customer, user_id=self.salesman.id).with_user(
            self.salesman
        ).action_confirm()
        self.assertEqual(self.Queue.search([]).partner_id, self.customer)
        self.assertTrue(self._triggers() - before)
        # Not moved inside the confirmation.
        self.assertEqual(self.customer.lifecycle_stage_id, self.suspect)
        remaining = self.Queue._cron_process()
        self.assertEqual(remaining, 0)
        self.assertFalse(self.Queue.search([]))
        self.assertEqual(self.customer.lifecycle_stage_id, self.client)

    def test_order_of_a_contact_person_queues_its_company(self):
        person = self.env["res.partner"].create(
            {"name": "Quentin", "parent_id": self.customer.id}
        )
        self._create_order(person).action_confirm()
        self.assertEqual(self.Queue.search([]).partner_id, self.customer)

    def test_job_processes_batches(self):
        customers = self.customer | self._create_customer("Queued 2")
        customers |= self._create_customer("Queued 3")
        for customer in customers:
            self._create_order(customer).action_confirm()
        self.assertEqual(self.Queue._cron_process(batch_size=2), 1)
        self.assertEqual(self.Queue._cron_process(batch_size=2), 0)
        self.assertEqual(set(customers.mapped("lifecycle_stage_id")), {self.client})

    def test_queueing_costs_one_statement(self):
        self.Queue._enqueue(self.customer)
        with self.assertQueryCount(__system__=1):
            self.Queue._enqueue(self.customer)

    def test_salespeople_cannot_read_the_queue(self):
        self.Queue._enqueue(self.customer)
        self.assertFalse(
            self.Queue.with_user(self.salesman).has_access("read"),
        )
