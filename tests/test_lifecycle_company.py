# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import tagged

from ..hooks import migrate_lifecycle_columns_to_company
from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestPartnerLifecycleCompany(ReferralCommon):
    """A contact shared by two companies has a stage and aggregates in each,
    from that company's orders only (``company_dependent`` fields)."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        ref = cls.env.ref
        cls.suspect = ref("sale_referral_lifecycle.stage_suspect")
        cls.prospect = ref("sale_referral_lifecycle.stage_prospect")
        cls.client = ref("sale_referral_lifecycle.stage_client")
        cls.fan = ref("sale_referral_lifecycle.stage_fan")
        cls.subscription = cls.env["product.product"].create(
            {
                "name": "Yearly subscription",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
            }
        )
        # Shared by both companies (no company), created in the first one.
        cls.shared = cls._create_customer("Shared Ltd")
        cls.company_b = cls.other_company

    def _confirm_in(self, company, partner, product=None):
        """A confirmed order of ``company`` for ``partner``, the lifecycle
        queue processed."""
        order = self._order_in(company, partner, product)
        order.action_confirm()
        self._process_lifecycle_queue()
        return order

    def _order_in(self, company, partner, product=None):
        """A quotation of ``company`` for ``partner``."""
        order = (
            self.env["sale.order"]
            .with_company(company)
            .create(
                {
                    "partner_id": partner.id,
                    "company_id": company.id,
                    "order_line": [
                        (
                            0,
                            0,
                            {
                                "product_id": (product or self.product).id,
                                "product_uom_qty": 1,
                            },
                        )
                    ],
                }
            )
        )
        self.assertEqual(order.company_id, company)
        return order

    def _in(self, company, partner=None):
        return (partner or self.shared).with_company(company)

    def test_shared_contact_has_a_stage_per_company(self):
        self._confirm_in(self.company_b, self.shared)
        self.assertRecordValues(
            self._in(self.company_b),
            [
                {
                    "lifecycle_stage_id": self.client.id,
                    "lifecycle_order_count": 1,
                    "lifecycle_converted": 100,
                }
            ],
        )
        self.assertRecordValues(
            self._in(self.company),
            [
                {
                    "lifecycle_stage_id": self.suspect.id,
                    "lifecycle_order_count": 0,
                    "lifecycle_converted": 0,
                    "lifecycle_last_order_date": False,
                }
            ],
        )
        # The first contact is the company's: created here, first quoted
        # there.
        self.assertTrue(self._in(self.company).first_contact_date)
        self.assertTrue(self._in(self.company_b).first_contact_date)

    def test_search_and_group_by_stage_use_the_current_company(self):
        self._confirm_in(self.company_b, self.shared)
        Partner = self.env["res.partner"]
        domain = [("id", "=", self.shared.id)]
        for company, stage in (
            (self.company, self.suspect),
            (self.company_b, self.client),
        ):
            in_company = Partner.with_company(company)
            self.assertEqual(
                in_company.search(domain + [("lifecycle_stage_id", "=", stage.id)]),
                self.shared,
            )
            groups = in_company.read_group(
                domain, ["lifecycle_stage_id"], ["lifecycle_stage_id"]
            )
            counts = {
                group["lifecycle_stage_id"][0]: group["lifecycle_stage_id_count"]
                for group in groups
            }
            # The kanban's group_expand: every stage is a column, the contact
            # in its company's stage only.
            self.assertIn(self.prospect.id, counts)
            self.assertEqual(
                {stage_id for stage_id, count in counts.items() if count}, {stage.id}
            )
            self.assertEqual(
                stage.with_company(company).partner_count,
                in_company.search_count([("lifecycle_stage_id", "=", stage.id)]),
            )

    def test_company_stage_applies_only_to_that_company_values(self):
        vip = self.env["partner.lifecycle.stage"].create(
            {"name": "VIP", "sequence": 100, "company_id": self.company.id}
        )
        self._confirm_in(self.company_b, self.shared)
        self.assertEqual(self._in(self.company).lifecycle_stage_id, vip)
        self.assertEqual(self._in(self.company_b).lifecycle_stage_id, self.client)

    def test_subscription_of_another_company_is_no_renewal(self):
        self._confirm_in(self.company_b, self.shared, product=self.subscription)
        self.assertTrue(self._in(self.company_b).subscription_end_date)
        self.assertFalse(self._in(self.company).subscription_end_date)
        here = self._order_in(self.company, self.shared, self.subscription)
        self.assertFalse(here.is_renewal)
        there = self._order_in(self.company_b, self.shared, self.subscription)
        self.assertTrue(there.is_renewal)
        here.action_confirm()
        self.assertFalse(here.is_renewal)

    def test_history_rows_carry_the_company(self):
        self._confirm_in(self.company_b, self.shared)
        history = self.shared.lifecycle_history_ids
        self.assertRecordValues(
            history.sorted("id"),
            [
                {
                    "company_id": self.company.id,
                    "from_stage_id": False,
                    "to_stage_id": self.suspect.id,
                    "automatic": True,
                },
                {
                    "company_id": self.company_b.id,
                    "from_stage_id": False,
                    "to_stage_id": self.client.id,
                    "automatic": True,
                },
            ],
        )
        # A manual move locks the stage of that company only.
        self._in(self.company_b).lifecycle_stage_id = self.fan
        self.assertRecordValues(
            self.shared.lifecycle_history_ids.sorted("id")[-1],
            [
                {
                    "company_id": self.company_b.id,
                    "from_stage_id": self.client.id,
                    "to_stage_id": self.fan.id,
                    "automatic": False,
                }
            ],
        )
        self.assertTrue(self._in(self.company_b).lifecycle_stage_locked)
        self.assertFalse(self._in(self.company).lifecycle_stage_locked)
        self.shared._lifecycle_recompute()
        self.assertEqual(self._in(self.company_b).lifecycle_stage_id, self.fan)
        self.assertEqual(self._in(self.company).lifecycle_stage_id, self.suspect)

    def test_who_may_sponsor_uses_the_program_company_stage(self):
        Program = self.env["referral.program"]
        program_a = Program._get_company_program(self.company)
        program_b = Program._get_company_program(self.company_b)
        (program_a | program_b).write(
            {"sponsor_policy": "stages", "sponsor_stage_ids": [(6, 0, self.client.ids)]}
        )
        self._confirm_in(self.company_b, self.shared)
        self.assertTrue(program_b._is_sponsor_eligible(self.shared))
        self.assertFalse(program_b._get_sponsor_refusals(self.shared))
        self.assertFalse(program_a._is_sponsor_eligible(self.shared))
        self.assertIn(
            "may not sponsor yet",
            program_a._get_sponsor_refusals(self.shared)[self.shared],
        )

    def test_recompute_writes_each_company_once_then_nothing(self):
        self._confirm_in(self.company_b, self.shared)
        Engine = self.env["partner.lifecycle.engine"]
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT lifecycle_stage_id, lifecycle_order_count FROM res_partner "
            "WHERE id = %s",
            [self.shared.id],
        )
        stages, counts = self.env.cr.fetchone()
        self.assertEqual(
            stages,
            {
                str(self.company.id): self.suspect.id,
                str(self.company_b.id): self.client.id,
            },
        )
        self.assertEqual(counts, {str(self.company.id): 0, str(self.company_b.id): 1})
        self.env.cr.execute(
            "SELECT ctid::text FROM res_partner WHERE id = %s", [self.shared.id]
        )
        version = self.env.cr.fetchone()[0]
        with self.assertQueryCount(5):
            Engine._recompute(self.shared)
        self.env.cr.execute(
            "SELECT ctid::text FROM res_partner WHERE id = %s", [self.shared.id]
        )
        self.assertEqual(self.env.cr.fetchone()[0], version)

    def test_migration_keys_old_values_by_the_contact_company(self):
        own = self._create_customer("Own B", company_id=self.company_b.id)
        self.env.flush_all()
        cr = self.env.cr
        # The columns as the previous version had them (plain, a foreign key,
        # the sale report view reading the stage).
        cr.execute(
            """
            ALTER TABLE res_partner
                DROP COLUMN lifecycle_stage_id CASCADE,
                DROP COLUMN lifecycle_order_count,
                DROP COLUMN lifecycle_stage_locked;
            ALTER TABLE res_partner
                ADD COLUMN lifecycle_stage_id int4
                    REFERENCES partner_lifecycle_stage(id) ON DELETE RESTRICT,
                ADD COLUMN lifecycle_order_count int4,
                ADD COLUMN lifecycle_stage_locked bool;
            UPDATE partner_lifecycle_history SET company_id = NULL
             WHERE partner_id IN %(ids)s;
            UPDATE res_partner
               SET lifecycle_stage_id = CASE WHEN id = %(shared)s THEN %(client)s
                                             ELSE %(fan)s END,
                   lifecycle_order_count = CASE WHEN id = %(shared)s THEN 3 ELSE 7 END,
                   lifecycle_stage_locked = id = %(own)s
             WHERE id IN %(ids)s
            """,
            {
                "ids": (self.shared.id, own.id),
                "shared": self.shared.id,
                "own": own.id,
                "client": self.client.id,
                "fan": self.fan.id,
            },
        )
        converted = migrate_lifecycle_columns_to_company(cr)
        self.assertEqual(
            set(converted),
            {"lifecycle_stage_id", "lifecycle_order_count", "lifecycle_stage_locked"},
        )
        self.env.invalidate_all()
        # The shared contact's values belong to the main company, the other's
        # to its company.
        self.assertRecordValues(
            self._in(self.company) | self._in(self.company, own),
            [
                {
                    "lifecycle_stage_id": self.client.id,
                    "lifecycle_order_count": 3,
                    "lifecycle_stage_locked": False,
                },
                {
                    "lifecycle_stage_id": False,
                    "lifecycle_order_count": 0,
                    "lifecycle_stage_locked": False,
                },
            ],
        )
        self.assertRecordValues(
            self._in(self.company_b, own),
            [
                {
                    "lifecycle_stage_id": self.fan.id,
                    "lifecycle_order_count": 7,
                    "lifecycle_stage_locked": True,
                }
            ],
        )
        self.assertEqual(
            set(own.lifecycle_history_ids.mapped("company_id")), {self.company_b}
        )
        self.assertEqual(
            set(self.shared.lifecycle_history_ids.mapped("company_id")),
            {self.env.ref("base.main_company")},
        )
        # Run again: nothing left to convert.
        self.assertEqual(migrate_lifecycle_columns_to_company(cr), [])
