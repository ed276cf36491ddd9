# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from freezegun import freeze_time

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralFraud(ReferralCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.sponsor.write(
            {
                "vat": "BE0477472701",
                "phone": "+32 2 555 12 34",
                "company_registry": "RCS 123",
            }
        )

    def _assert_held(self, referral, reason):
        self.assertEqual(referral.state, "to_review")
        self.assertIn(reason, referral.review_reason)
        self.assertFalse(referral.activity_ids, "no activity before the review")

    def test_same_vat_held_for_review(self):
        referral = self._refer(referee_vat="be 0477.472.701")
        self._assert_held(referral, "Tax ID")
        self.assertIn("Held for review", referral.message_ids[:1].body)

    def test_same_company_email_domain_held_for_review(self):
        referral = self._refer(referee_email="someone@sponsor.example.com")
        self._assert_held(referral, "email domain")

    def test_free_mail_domain_is_not_a_link(self):
        self.sponsor.email = "boss@gmail.com"
        referral = self._refer(referee_email="friend@gmail.com")
        self.assertEqual(referral.state, "new")
        self.assertEqual(len(referral.activity_ids), 2)

    def test_same_phone_held_for_review(self):
        referral = self._refer(referee_phone="02 555 12 34")
        self._assert_held(referral, "phone")

    def test_same_company_registry_held_for_review(self):
        referee = self._create_customer("Twin Ltd", company_registry="rcs-123")
        referral = self._refer(referee_id=referee.id)
        self._assert_held(referral, "registry")

    def _send(self, name, source="portal", ip="10.0.0.1"):
        """A referral the sponsor's side sends: from its portal, or through
        its public link (source code)."""
        referral, errors = self.Referral._portal_create_referral(
            self.sponsor,
            {
                "company_name": name,
                "contact_name": f"Contact of {name}",
                "email": f"hello@{name.lower().replace(' ', '-')}.example.com",
                "consent": True,
            },
            source,
            ip,
        )
        self.assertFalse(errors)
        return referral

    def test_burst_of_portal_and_link_referrals_held_for_review(self):
        """Beyond the program's threshold within an hour, counting what the
        sponsor sent through its portal and its public link."""
        self.program.fraud_burst_limit = 2
        referrals = (
            self._send("Burst One")
            | self._send("Burst Two", source="code", ip="10.0.0.2")
            | self._send("Burst Three")
        )
        self.assertEqual(referrals.mapped("state"), ["new", "new", "to_review"])
        self.assertIn("sent 3 referrals within an hour", referrals[2].review_reason)
        self.assertIn("more than 2", referrals[2].review_reason)

    def test_staff_referrals_are_no_burst_of_the_sponsor(self):
        """Referrals entered in the back office (or loaded as demo data with
        a portal source) are not the sponsor sending referrals: neither held
        themselves nor counted in the sponsor's hour."""
        self.program.fraud_burst_limit = 2
        staff = self.Referral
        for index in range(4):
            staff |= self._refer(referee_company_name=f"Staff {index}")
        staff |= self._refer(referee_company_name="Loaded", source="portal")
        self.assertEqual(set(staff.mapped("state")), {"new"})
        sent = self._send("Sent One") | self._send("Sent Two")
        self.assertEqual(sent.mapped("state"), ["new", "new"])

    def test_burst_counts_the_last_hour_only(self):
        self.program.fraud_burst_limit = 1
        with freeze_time("2026-05-04 09:00:00"):
            self._send("Early One")
        with freeze_time("2026-05-04 10:01:00"):
            later = self._send("Later One")
        self.assertEqual(later.state, "new")
        with freeze_time("2026-05-04 10:30:00"):
            burst = self._send("Later Two")
        self.assertEqual(burst.state, "to_review")

    def test_burst_threshold_zero_disables_the_check(self):
        self.program.fraud_burst_limit = 0
        referrals = self.Referral
        for index in range(4):
            referrals |= self._send(f"Free {index}")
        self.assertEqual(set(referrals.mapped("state")), {"new"})

    def test_burst_threshold_is_the_program_setting(self):
        field = self.env["referral.program"]._fields["fraud_burst_limit"]
        self.assertEqual(field.string, "Referrals per Hour before Review")
        self.assertEqual(self.program.fraud_burst_limit, 5)

    def test_no_reward_while_to_review(self):
        referral = self._refer(referee_vat="BE0477472701")
        self._confirm_order(referral.referee_id)
        self.assertEqual(referral.state, "to_review")
        self.assertFalse(referral.transaction_ids)

    def test_referee_under_review_is_not_referred_twice(self):
        referral = self._refer(referee_vat="BE0477472701")
        other_sponsor = self._create_customer("Other Sponsor")
        self._confirm_order(other_sponsor)
        with self.assertRefused(ValidationError, "already been referred"):
            self._refer(sponsor=other_sponsor, referee_id=referral.referee_id.id)
        # A code typed on the referee's order makes no second referral either.
        order = self._create_order(
            referral.referee_id, referral_code=other_sponsor.referral_code
        )
        order.action_confirm()
        self.assertEqual(
            self.Referral.search_count([("referee_id", "=", referral.referee_id.id)]),
            1,
        )
        self.assertEqual(referral.state, "to_review")

    def test_manager_accepts_then_activities_start(self):
        referral = self._refer(referee_vat="BE0477472701")
        referral.with_user(self.sale_manager).action_review_accept()
        self.assertEqual(referral.state, "new")
        self.assertEqual(len(referral.activity_ids), 2)
        self.assertIn("accepted", referral.message_ids[:1].body)

    def test_manager_rejects(self):
        referral = self._refer(referee_vat="BE0477472701")
        referral.with_user(self.sale_manager).action_review_reject()
        self.assertEqual(referral.state, "rejected")
        self.assertFalse(referral.activity_ids)

    def test_salesperson_cannot_review(self):
        referral = self._refer(referee_vat="BE0477472701")
        with self.assertRaises(UserError):
            referral.with_user(self.salesman).action_review_accept()
        self.assertEqual(referral.state, "to_review")

    def test_review_reason_hidden_from_portal(self):
        self.assertEqual(
            self.Referral._fields["review_reason"].groups,
            "sales_team.group_sale_salesman",
        )
