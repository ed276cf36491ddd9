# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date

from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import tagged

from .common import WalletCommon


@tagged("post_install", "-at_install")
class TestReferralSharedRules(WalletCommon):
    """The rules that the back office, the portal, sponsoring and orders
    share, each written once: the cases where former copies disagreed."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # A group whose subsidiary ordered; the parent itself never did.
        cls.parent = cls._create_customer(
            "Parent Group", email="hq@parent-group.example.com"
        )
        cls.subsidiary = cls._create_customer(
            "Parent Group Lyon", parent_id=cls.parent.id
        )
        cls._confirm_order(cls.subsidiary)

    def _portal_refer(self, sponsor, **form):
        values = dict(
            {
                "company_name": "Portal Prospect",
                "contact_name": "Pat Prospect",
                "email": "pat@portal-prospect.example.com",
                "consent": True,
            },
            **form,
        )
        return self.Referral._portal_create_referral(
            sponsor, values, "portal", "10.0.0.7"
        )

    # ------------------------------------------------------------------
    # Customers of a company: the commercial entity, a subsidiary apart
    # ------------------------------------------------------------------

    def test_customers_are_commercial_entities_of_the_company(self):
        person = self.env["res.partner"].create(
            {"name": "Paula Parent", "parent_id": self.parent.id}
        )
        contacts = self.parent | self.subsidiary | person
        self.assertEqual(contacts._get_company_customers(self.company), self.subsidiary)
        self.assertFalse(contacts._get_company_customers(self.other_company))
        order = self.subsidiary.sale_order_ids
        self.assertFalse(
            self.subsidiary._get_company_customers(self.company, exclude_orders=order)
        )
        # A contact person's order makes its company a customer.
        self._confirm_order(person)
        self.assertEqual(person._get_company_customers(self.company), self.parent)

    def test_portal_accepts_the_parent_of_a_customer_subsidiary(self):
        """The back office accepted it; the portal said "already our
        customer" (it counted the subsidiary's orders)."""
        referral, errors = self._portal_refer(
            self.sponsor,
            company_name="Parent Group",
            email="hq@parent-group.example.com",
        )
        self.assertFalse(errors)
        self.assertEqual(referral.referee_id, self.parent)

    def test_portal_refuses_a_customer_as_the_back_office_does(self):
        self.subsidiary.email = "lyon@parent-group.example.com"
        referral, errors = self._portal_refer(
            self.sponsor,
            company_name="Parent Group Lyon",
            email="lyon@parent-group.example.com",
        )
        self.assertFalse(referral)
        self.assertIn("already our customer", errors["form"])
        with self.assertRefused(ValidationError, "already a customer"):
            self._refer(referee_id=self.subsidiary.id)

    def test_sponsoring_refusal_and_eligibility_agree(self):
        """Refer a Company (refusals) let the parent of a customer subsidiary
        sponsor while the referral's own check refused it."""
        refusals = self.program._get_sponsor_refusals(self.parent | self.subsidiary)
        self.assertIn(self.parent, refusals)
        self.assertNotIn(self.subsidiary, refusals)
        self.assertFalse(self.program._is_sponsor_eligible(self.parent))
        self.assertTrue(self.program._is_sponsor_eligible(self.subsidiary))
        with self.assertRefused(ValidationError, "may not sponsor"):
            self._refer(sponsor=self.parent)

    def test_welcome_discount_for_the_parent_of_a_customer_subsidiary(self):
        """The parent's first order gets the welcome discount: its
        subsidiary's orders are not its own ("already ordered" before)."""
        self.program.referee_discount_percent = 10.0
        referral = self._refer(referee_id=self.parent.id)
        quotation = self._create_order(referral.referee_id)
        self.assertTrue(quotation.referral_welcome_discount_available)
        quotation.action_apply_referral_welcome_discount()
        self.assertTrue(quotation.order_line.filtered("is_referral_welcome_discount"))
        quotation.action_confirm()
        self.assertTrue(quotation.order_line.filtered("is_referral_welcome_discount"))

    # ------------------------------------------------------------------
    # Referral codes: one normalisation
    # ------------------------------------------------------------------

    def test_a_code_typed_loosely_is_found_everywhere(self):
        code = self.sponsor.referral_code
        typed = f" {code[:4].lower()} {code[4:].lower()} "
        Partner = self.env["res.partner"]
        self.assertEqual(Partner._find_by_referral_code([typed]), {code: self.sponsor})
        # The public link kept case and inner spaces: it found nobody.
        self.assertEqual(Partner._portal_find_link_sponsor(typed), self.sponsor)
        customer = self._create_customer("Loose Typist")
        order = self._create_order(customer, referral_code=typed)
        self.assertEqual(order.referral_code, code)
        self.assertEqual(order.referral_code_sponsor_id, self.sponsor)
        order.action_confirm()
        self.assertEqual(order.referral_id.sponsor_id, self.sponsor)

    def test_a_code_too_long_is_no_code(self):
        Partner = self.env["res.partner"]
        self.assertFalse(Partner._portal_find_link_sponsor("A" * 65))
        self.assertEqual(Partner._find_by_referral_code(["A" * 65]), {})

    # ------------------------------------------------------------------
    # Sponsor cycles: one check
    # ------------------------------------------------------------------

    def test_portal_refuses_an_indirect_sponsor_cycle(self):
        self.program.write({"sponsor_policy": "any", "allow_customer_referee": True})
        self.sponsor.email = "boss@sponsor.example.com"
        b = self._refer(referee_company_name="B Corp").referee_id
        c = self._refer(sponsor=b, referee_company_name="C Corp").referee_id
        referral, errors = self._portal_refer(
            c, company_name="Sponsor Corp", email="boss@sponsor.example.com"
        )
        self.assertFalse(referral)
        self.assertIn("cannot be referred back", errors["form"])
        self.assertTrue(self.Referral._is_sponsor_cycle(c, self.sponsor))
        self.assertFalse(self.Referral._is_sponsor_cycle(self.sponsor, c))

    # ------------------------------------------------------------------
    # A company's day: its working schedule's time zone
    # ------------------------------------------------------------------

    def test_first_contact_day_follows_the_working_schedule(self):
        """The first contact used the company contact's time zone, the
        follow-ups the working schedule's: one day apart around midnight."""
        self.company.resource_calendar_id.tz = "Pacific/Auckland"
        self.company.partner_id.tz = "UTC"
        # 23:30 UTC on 1 March is already 2 March in Auckland.
        with freeze_time("2026-03-01 23:30:00"):
            partner = self._create_customer("Kiwi Ltd")
            referral = self._refer(referee_company_name="Kiwi Referee Ltd")
        self.assertEqual(partner.first_contact_date, date(2026, 3, 2))
        self.assertEqual(referral.referee_id.first_contact_date, date(2026, 3, 2))

    # ------------------------------------------------------------------
    # Activity plans: one scheduler for referral calls and follow-ups
    # ------------------------------------------------------------------

    def test_referral_call_of_the_day_falls_on_a_working_day(self):
        """A plan step without delay, planned on a Saturday, is due on
        Monday, as the follow-up steps are (the referral's plan said
        Saturday)."""
        plan = self.program.activity_plan_id
        plan.template_ids[:1].write({"delay_count": 0, "delay_unit": "days"})
        self.company.resource_calendar_id.tz = "UTC"
        with freeze_time("2026-03-07 10:00:00"):  # a Saturday
            referral = self._refer(referee_company_name="Weekend Ltd")
        first = referral.activity_ids.filtered(
            lambda a: a.activity_type_id == plan.template_ids[:1].activity_type_id
        )
        self.assertEqual(first.date_deadline, date(2026, 3, 9))
