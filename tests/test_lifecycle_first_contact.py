# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime
from types import SimpleNamespace
from unittest.mock import patch

from freezegun import freeze_time

from odoo.tests import tagged

from .common import ReferralCommon

FIRST_CONTACT_MODULE = "odoo.addons.sale_referral_lifecycle.models.res_partner"


@tagged("post_install", "-at_install")
class TestPartnerFirstContact(ReferralCommon):
    """A contact enters the lifecycle when it is created, not at its first
    quotation or the next night."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.suspect = cls.env.ref("sale_referral_lifecycle.stage_suspect")
        cls.prospect = cls.env.ref("sale_referral_lifecycle.stage_prospect")
        cls.subscription = cls.env["product.product"].create(
            {
                "name": "Yearly subscription",
                "type": "service",
                "list_price": 1000.0,
                "subscription_months": 12,
            }
        )

    @freeze_time("2026-03-10 09:00:00")
    def test_contact_created_by_hand_is_suspect_with_history(self):
        partner = (
            self.env["res.partner"]
            .with_user(self.salesman)
            .create({"name": "Walk-in Ltd", "is_company": True})
        )
        self.assertRecordValues(
            partner,
            [
                {
                    "lifecycle_stage_id": self.suspect.id,
                    "lifecycle_stage_locked": False,
                    "first_contact_date": date(2026, 3, 10),
                }
            ],
        )
        self.assertRecordValues(
            partner.lifecycle_history_ids,
            [
                {
                    "from_stage_id": False,
                    "to_stage_id": self.suspect.id,
                    "automatic": True,
                    "user_id": self.salesman.id,
                }
            ],
        )

    def test_given_first_contact_is_kept(self):
        source = self.env["utm.source"].create({"name": "Fair 2025"})
        partner = self._create_customer(
            "Met Ltd",
            first_contact_date="2025-11-02",
            first_contact_source_id=source.id,
        )
        self.assertRecordValues(
            partner,
            [
                {
                    "first_contact_date": date(2025, 11, 2),
                    "first_contact_source_id": source.id,
                    "lifecycle_stage_id": self.suspect.id,
                }
            ],
        )
        self.assertEqual(partner.lifecycle_history_ids.first_contact_source_id, source)

    def test_channel_from_the_creating_context(self):
        source = self.env["utm.source"].create({"name": "Newsletter"})
        medium = self.env["utm.medium"].create({"name": "E-mail blast"})
        partner = (
            self.env["res.partner"]
            .with_context(default_source_id=source.id, default_medium_id=medium.id)
            .create({"name": "Reader Ltd", "is_company": True})
        )
        self.assertRecordValues(
            partner,
            [
                {
                    "first_contact_source_id": source.id,
                    "first_contact_medium_id": medium.id,
                }
            ],
        )

    def test_channel_from_the_utm_cookies_of_a_portal_request(self):
        request = SimpleNamespace(
            cookies={"odoo_utm_source": "Spring mailing", "odoo_utm_medium": "Email"}
        )
        with patch(f"{FIRST_CONTACT_MODULE}.request", request):
            partner = (
                self.env["res.partner"]
                .sudo()
                .create({"name": "Portal Visitor Ltd", "is_company": True})
            )
        self.assertEqual(partner.first_contact_source_id.name, "Spring mailing")
        self.assertEqual(
            partner.first_contact_medium_id, self.env.ref("utm.utm_medium_email")
        )
        self.assertEqual(partner.lifecycle_stage_id, self.suspect)

    def test_contact_person_has_no_stage_of_its_own(self):
        company = self._create_customer("Parent Ltd")
        person = self.env["res.partner"].create(
            {"name": "Paul", "parent_id": company.id}
        )
        self.assertFalse(person.lifecycle_stage_id)
        self.assertFalse(person.lifecycle_history_ids)
        self.assertEqual(company.lifecycle_stage_id, self.suspect)

    def test_subsidiary_is_staged_like_any_company(self):
        group = self._create_customer("Group Holding")
        subsidiary = self._create_customer("Group France", parent_id=group.id)
        self.assertEqual(subsidiary.commercial_partner_id, subsidiary)
        self.assertEqual(subsidiary.lifecycle_stage_id, self.suspect)
        self._create_order(subsidiary).action_quotation_sent()
        self._process_lifecycle_queue()
        self.assertEqual(subsidiary.lifecycle_stage_id, self.prospect)
        self.assertEqual(group.lifecycle_stage_id, self.suspect)

    def test_cron_and_batches_stage_subsidiaries(self):
        group = self._create_customer("Cron Holding")
        subsidiary = self._create_customer("Cron Subsidiary", parent_id=group.id)
        # As contacts created before the addon was installed.
        self.env.cr.execute(
            "UPDATE res_partner SET lifecycle_stage_id = NULL WHERE id IN %s",
            [(group.id, subsidiary.id)],
        )
        self.env.invalidate_all()
        self.env["partner.lifecycle.engine"]._recompute_in_batches(
            [group.id, subsidiary.id], batch_size=1
        )
        self.assertEqual(subsidiary.lifecycle_stage_id, self.suspect)
        self.assertEqual(group.lifecycle_stage_id, self.suspect)

    def test_referee_created_by_a_referral_is_suspect_from_referral(self):
        referee = self._refer(referee_company_name="Referred Ltd").referee_id
        self.assertRecordValues(
            referee,
            [
                {
                    "lifecycle_stage_id": self.suspect.id,
                    "first_contact_source_id": self.env.ref(
                        "sale_referral_lifecycle.utm_source_referral"
                    ).id,
                }
            ],
        )

    def test_imported_contact_lands_in_suspect_with_its_columns(self):
        source = self.env["utm.source"].create({"name": "Trade show list"})
        result = (
            self.env["res.partner"]
            .with_context(import_file=True)
            .load(
                ["name", "is_company", "first_contact_date", "first_contact_source_id"],
                [["Imported Ltd", "1", "2026-02-01", "Trade show list"]],
            )
        )
        self.assertFalse(result["messages"])
        partner = self.env["res.partner"].browse(result["ids"])
        self.assertRecordValues(
            partner,
            [
                {
                    "lifecycle_stage_id": self.suspect.id,
                    "first_contact_date": date(2026, 2, 1),
                    "first_contact_source_id": source.id,
                }
            ],
        )
        self.assertEqual(len(partner.lifecycle_history_ids), 1)

    def test_first_contact_date_in_the_company_time_zone(self):
        # The company counts its days where its team works (its schedule).
        self.env.company.resource_calendar_id.tz = "Pacific/Auckland"
        # 23:30 UTC on 1 March is already 2 March in Auckland.
        with freeze_time("2026-03-01 23:30:00"):
            partner = self._create_customer("Kiwi Ltd")
        self.assertEqual(partner.first_contact_date, date(2026, 3, 2))

    def test_order_days_in_the_company_time_zone(self):
        # The company counts its days where its team works (its schedule).
        self.env.company.resource_calendar_id.tz = "Pacific/Auckland"
        customer = self._create_customer("Kiwi Subscriber")
        order = self._create_order(customer)
        order.order_line.product_id = self.subscription
        order.action_confirm()
        # 20:00 UTC on 9 January is 10 January in Auckland.
        order.date_order = datetime(2026, 1, 9, 20, 0)
        customer._lifecycle_recompute()
        self.assertEqual(customer.subscription_end_date, date(2027, 1, 10))

    def test_creating_contacts_costs_a_fixed_number_of_queries(self):
        Partner = self.env["res.partner"]
        Partner.create({"name": "Warm-up", "is_company": True})
        self.env.flush_all()
        with self.assertQueryCount(__system__=QUERIES_ONE):
            Partner.create({"name": "One", "is_company": True})
            self.env.flush_all()
        with self.assertQueryCount(__system__=QUERIES_MANY):
            Partner.create(
                [{"name": f"Many {i}", "is_company": True} for i in range(50)]
            )
            self.env.flush_all()

    def test_subscription_end_given_is_kept_until_an_order_sets_one(self):
        partner = self.env["res.partner"].create(
            {
                "name": "Imported Subscriber",
                "is_company": True,
                "subscription_end_date": date(2027, 3, 31),
            }
        )
        self.assertEqual(partner.subscription_end_date, date(2027, 3, 31))
        self.env["partner.lifecycle.engine"]._recompute(partner)
        self.assertEqual(partner.subscription_end_date, date(2027, 3, 31))


# Creating contacts as measured: Odoo's creation (which grows with the number
# of contacts), then the engine's fixed queries whatever their number
# (stages, subscription products, aggregates, UPDATE, history INSERT), and
# one to check that no generated referral code is a retired one.
QUERIES_ONE = 11
QUERIES_MANY = 60
