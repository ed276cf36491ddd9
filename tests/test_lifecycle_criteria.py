# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, datetime

from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .lifecycle_common import LifecycleCommon


@tagged("post_install", "-at_install")
class TestLifecycleCriteria(LifecycleCommon):
    """Criteria from what the ERP knows, each one column of the engine's
    aggregate query: referrals brought and won, invoices paid on time,
    tenure, renewals; per company."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Above every seed: reached only through the criterion under test.
        cls.top = cls.env["partner.lifecycle.stage"].create(
            # Leaves at once when its criterion lapses.
            {"name": "Ambassador", "sequence": 1000, "min_days_before_down": 0}
        )

    def _top_with(self, **criteria):
        self.top.write(criteria)

    def _recompute(self, partner):
        partner._lifecycle_recompute()
        return partner

    # --- Seeds -----------------------------------------------------------

    def test_seed_fan_counts_referrals_and_addict_renews_for_two_years(self):
        """New installs: the data file's Fan and Addict (noupdate: a
        database upgraded from an older version keeps its own)."""
        self.assertRecordValues(
            self.fan, [{"min_recent_order_count": 3, "min_referral_count": 1}]
        )
        self.assertRecordValues(
            self.addict,
            [
                {
                    "min_renewal_count": 1,
                    "min_tenure_months": 24,
                    "require_active_subscription": True,
                }
            ],
        )
        self.top.active = False
        self._orders(self.customer, 3)
        # Buys regularly without recommending anybody: not a Fan.
        self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        self._refer(sponsor=self.customer)
        self._recompute(self.customer)
        self.assertEqual(self.customer.lifecycle_stage_id, self.fan)

    # --- Referrals brought -----------------------------------------------

    def test_referrals_brought_count_accepted_only(self):
        self._top_with(min_referral_count=2)
        first = self._refer(referee_company_name="Prospect One")
        self._recompute(self.sponsor)
        self.assertEqual(self.sponsor.lifecycle_referral_count, 1)
        self.assertNotEqual(self.sponsor.lifecycle_stage_id, self.top)
        lost = self._refer(referee_company_name="Prospect Two")
        lost.action_mark_lost()
        refused = self._refer(referee_company_name="Prospect Three")
        refused.action_reject()
        self._recompute(self.sponsor)
        # Lost and refused referrals are not recommendations that held.
        self.assertEqual(self.sponsor.lifecycle_referral_count, 1)
        self.assertNotEqual(self.sponsor.lifecycle_stage_id, self.top)
        self._refer(referee_company_name="Prospect Four").action_start()
        self._recompute(self.sponsor)
        self.assertEqual(self.sponsor.lifecycle_referral_count, 2)
        self.assertEqual(self.sponsor.lifecycle_stage_id, self.top)
        self.assertTrue(first.referee_id)

    def test_referral_of_an_archived_referee_still_counts(self):
        self._top_with(min_referral_count=1)
        referral = self._refer(referee_company_name="Gone Ltd")
        referral.referee_id.active = False
        self._recompute(self.sponsor)
        self.assertEqual(self.sponsor.lifecycle_stage_id, self.top)

    def test_referrals_won_count_won_and_rewarded(self):
        self._top_with(min_referral_won_count=1)
        referral = self._refer(referee_company_name="Buyer Ltd")
        self._recompute(self.sponsor)
        self.assertNotEqual(self.sponsor.lifecycle_stage_id, self.top)
        self.assertEqual(self.sponsor.lifecycle_referral_won_count, 0)
        referral._flow_write({"state": "won"})
        self._recompute(self.sponsor)
        self.assertEqual(self.sponsor.lifecycle_referral_won_count, 1)
        self.assertEqual(self.sponsor.lifecycle_stage_id, self.top)

    def test_referrals_count_in_their_company_only(self):
        """A contact shared by two companies: a referral brought to the
        other company makes it nothing here."""
        self._top_with(min_referral_count=1)
        self._orders(self.sponsor, 1, company=self.other_company)
        self.env["referral.referral"].with_company(self.other_company).create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Elsewhere Ltd",
                "company_id": self.other_company.id,
            }
        )
        self._recompute(self.sponsor)
        self.assertEqual(self._stage_in(self.sponsor, self.other_company), self.top)
        self.assertNotEqual(self._stage_in(self.sponsor), self.top)
        self.assertEqual(self.sponsor.lifecycle_referral_count, 0)

    def test_referrals_not_read_when_no_stage_uses_them(self):
        self.fan.min_referral_count = 0
        self._refer(referee_company_name="Unused Ltd")
        self._recompute(self.sponsor)
        self.assertEqual(self.sponsor.lifecycle_referral_count, 0)

    # --- Invoices paid on time -------------------------------------------

    def _invoice(self, partner, invoice_date, due):
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": partner.id,
                "invoice_date": invoice_date,
                "invoice_date_due": due,
                "invoice_line_ids": [
                    (0, 0, {"product_id": self.product.id, "price_unit": 100.0})
                ],
            }
        )
        invoice.action_post()
        return invoice

    def _pay(self, invoice, day, amount=None):
        wizard = (
            self.env["account.payment.register"]
            .with_context(active_model="account.move", active_ids=invoice.ids)
            .create({"payment_date": day, **({"amount": amount} if amount else {})})
        )
        wizard._create_payments()

    @freeze_time("2026-06-30 12:00:00")
    def test_invoices_paid_on_time_share(self):
        self._top_with(min_paid_on_time_rate=60)
        on_time = self._invoice(self.customer, date(2026, 5, 1), date(2026, 5, 31))
        self._pay(on_time, date(2026, 5, 20))
        late = self._invoice(self.customer, date(2026, 5, 1), date(2026, 5, 10))
        self._pay(late, date(2026, 6, 1))
        # Not due yet: not known, left out.
        self._invoice(self.customer, date(2026, 6, 20), date(2026, 7, 20))
        self._recompute(self.customer)
        self.assertEqual(self.customer.lifecycle_paid_on_time_rate, 50)
        self.assertNotEqual(self.customer.lifecycle_stage_id, self.top)
        paid = self._invoice(self.customer, date(2026, 6, 1), date(2026, 6, 15))
        self._pay(paid, date(2026, 6, 15))
        self._recompute(self.customer)
        self.assertEqual(self.customer.lifecycle_paid_on_time_rate, 67)
        self.assertEqual(self.customer.lifecycle_stage_id, self.top)

    @freeze_time("2026-06-30 12:00:00")
    def test_overdue_unpaid_invoice_counts_late_and_reversed_one_not(self):
        self._top_with(min_paid_on_time_rate=100)
        paid = self._invoice(self.customer, date(2026, 5, 1), date(2026, 5, 31))
        self._pay(paid, date(2026, 5, 2))
        refunded = self._invoice(self.customer, date(2026, 5, 1), date(2026, 5, 5))
        reversal = (
            self.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=refunded.ids)
            .create({"journal_id": refunded.journal_id.id, "date": date(2026, 5, 6)})
        )
        reversal.refund_moves()
        reversal.new_move_ids.action_post()
        self.assertEqual(refunded.payment_state, "reversed")
        self._recompute(self.customer)
        # The credit note cancelled it: neither paid nor late.
        self.assertEqual(self.customer.lifecycle_paid_on_time_rate, 100)
        self.assertEqual(self.customer.lifecycle_stage_id, self.top)
        overdue = self._invoice(self.customer, date(2026, 6, 1), date(2026, 6, 10))
        self._pay(overdue, date(2026, 6, 5), amount=40.0)
        self.assertEqual(overdue.payment_state, "partial")
        self._recompute(self.customer)
        self.assertEqual(self.customer.lifecycle_paid_on_time_rate, 50)
        self.assertNotEqual(self.customer.lifecycle_stage_id, self.top)

    def test_no_invoice_does_not_meet_a_share(self):
        self._top_with(min_paid_on_time_rate=1)
        self._recompute(self.customer)
        self.assertNotEqual(self.customer.lifecycle_stage_id, self.top)

    def test_share_above_100_refused(self):
        with self.assertRaises(ValidationError):
            self.top.min_paid_on_time_rate = 101

    # --- Tenure and renewals ---------------------------------------------

    def test_tenure_counts_months_since_the_first_order(self):
        self._top_with(min_tenure_months=24)
        with freeze_time("2026-06-15 12:00:00"):
            self._orders(self.customer, 1, date=datetime(2024, 7, 1, 12))
            self._recompute(self.customer)
            self.assertEqual(self.customer.lifecycle_first_order_date, date(2024, 7, 1))
            self.assertNotEqual(self.customer.lifecycle_stage_id, self.top)
        with freeze_time("2026-07-01 12:00:00"):
            self._recompute(self.customer)
            self.assertEqual(self.customer.lifecycle_stage_id, self.top)

    def test_tenure_of_a_quotation_only_contact_is_none(self):
        self._top_with(min_tenure_months=0, min_quotation_count=1)
        self._create_order(self.customer).action_quotation_sent()
        self._top_with(min_tenure_months=1)
        self._recompute(self.customer)
        self.assertFalse(self.customer.lifecycle_first_order_date)
        self.assertNotEqual(self.customer.lifecycle_stage_id, self.top)

    def test_renewals_confirmed(self):
        self._top_with(min_renewal_count=1)
        self._orders(self.customer, 1, product=self.subscription)
        self.assertEqual(self.customer.lifecycle_renewal_count, 0)
        self.assertNotEqual(self.customer.lifecycle_stage_id, self.top)
        renewal = self._orders(self.customer, 1, product=self.subscription)
        self.assertTrue(renewal.is_renewal)
        self.assertEqual(self.customer.lifecycle_renewal_count, 1)
        self.assertEqual(self.customer.lifecycle_stage_id, self.top)

    def test_seed_addict_needs_two_years_and_a_renewal(self):
        self.top.active = False
        with freeze_time("2024-01-10 12:00:00"):
            self._orders(self.customer, 1, product=self.subscription)
        with freeze_time("2025-01-05 12:00:00"):
            self._orders(self.customer, 1, product=self.subscription)
        with freeze_time("2025-12-20 12:00:00"):
            self._orders(self.customer, 1, product=self.subscription)
            # Renews, a subscription running, 23 months a customer: not an
            # Addict yet.
            self.assertEqual(self.customer.lifecycle_renewal_count, 2)
            self.assertEqual(self.customer.lifecycle_stage_id, self.loyal)
        with freeze_time("2026-01-12 12:00:00"):
            self._recompute(self.customer)
            self.assertEqual(self.customer.lifecycle_stage_id, self.addict)

    def test_criteria_negative_refused(self):
        for field in (
            "min_referral_count",
            "min_referral_won_count",
            "min_tenure_months",
            "min_renewal_count",
            "min_days_before_down",
        ):
            with self.assertRaises(ValidationError):
                self.top.write({field: -1})
