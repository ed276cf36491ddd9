# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralRules(ReferralCommon):
    def assertNothingWritten(self, referral_count, partner_count):
        self.assertEqual(self.Referral.search_count([]), referral_count)
        self.assertEqual(
            self.env["res.partner"].with_context(active_test=False).search_count([]),
            partner_count,
        )

    def _counts(self):
        return (
            self.Referral.search_count([]),
            self.env["res.partner"].with_context(active_test=False).search_count([]),
        )

    def test_referral_refused_when_sponsor_refers_itself(self):
        counts = self._counts()
        with self.assertRefused(ValidationError, "cannot refer itself"):
            self._refer(referee_id=self.sponsor_contact.id)
        self.assertNothingWritten(*counts)

    def test_referral_refused_when_sponsor_refers_itself_by_email(self):
        counts = self._counts()
        with self.assertRefused(ValidationError, "cannot refer itself"):
            self._refer(referee_email="BOSS@sponsor.example.com")
        self.assertNothingWritten(*counts)

    def test_referral_refused_when_referee_already_referred(self):
        first = self._refer(referee_email="ceo@prospect.example.com")
        other_sponsor = self._create_customer("Other Sponsor")
        self._confirm_order(other_sponsor)
        counts = self._counts()
        with self.assertRefused(ValidationError, "already been referred"):
            self._refer(sponsor=other_sponsor, referee_id=first.referee_id.id)
        self.assertNothingWritten(*counts)

    def test_referee_referred_again_after_lost_referral(self):
        first = self._refer()
        first.action_mark_lost()
        second = self._refer(referee_id=first.referee_id.id)
        self.assertEqual(second.state, "new")
        self.assertEqual(second.referee_id, first.referee_id)

    def test_reopening_lost_referral_refused_when_referee_referred_again(self):
        first = self._refer()
        first.action_mark_lost()
        self._refer(referee_id=first.referee_id.id)
        with self.assertRefused(ValidationError, "already been referred"):
            first.action_reset()
        self.assertEqual(first.state, "lost")

    def test_referral_refused_on_direct_sponsor_cycle(self):
        referral = self._refer()
        referee = referral.referee_id
        self.program.write({"sponsor_policy": "any", "allow_customer_referee": True})
        counts = self._counts()
        with self.assertRefused(ValidationError, "cannot refer its own sponsor"):
            self._refer(sponsor=referee, referee_id=self.sponsor.id)
        self.assertNothingWritten(*counts)

    def test_referral_refused_on_indirect_sponsor_cycle(self):
        self.program.write({"sponsor_policy": "any", "allow_customer_referee": True})
        b = self._refer().referee_id
        c = self._refer(sponsor=b, referee_company_name="C Corp").referee_id
        self.assertEqual(c.sponsor_id, b)
        self.assertEqual(b.sponsor_id, self.sponsor)
        with self.assertRefused(ValidationError, "cannot refer its own sponsor"):
            self._refer(sponsor=c, referee_id=self.sponsor.id)
        self.assertFalse(self.sponsor.sponsor_id)

    def test_referral_refused_when_referee_is_customer(self):
        customer = self._create_customer("Existing Customer")
        self._confirm_order(customer)
        counts = self._counts()
        with self.assertRefused(ValidationError, "already a customer"):
            self._refer(referee_id=customer.id)
        self.assertNothingWritten(*counts)

    def test_referral_accepts_customer_when_program_allows(self):
        customer = self._create_customer("Existing Customer")
        self._confirm_order(customer)
        self.program.allow_customer_referee = True
        referral = self._refer(referee_id=customer.id)
        self.assertEqual(referral.referee_id, customer)

    def test_referee_with_cancelled_order_only_is_not_a_customer(self):
        customer = self._create_customer("Hesitant Ltd")
        order = self._confirm_order(customer)
        order._action_cancel()
        referral = self._refer(referee_id=customer.id)
        self.assertEqual(referral.state, "new")

    def test_referral_refused_when_sponsor_archived(self):
        self.sponsor.action_archive()
        counts = self._counts()
        with self.assertRefused(ValidationError, "archived"):
            self._refer()
        self.assertNothingWritten(*counts)

    def test_referral_refused_when_sponsor_never_ordered(self):
        prospect = self._create_customer("Not Yet Customer")
        counts = self._counts()
        with self.assertRefused(ValidationError, "may not sponsor"):
            self._refer(sponsor=prospect)
        self.assertNothingWritten(*counts)

    def test_any_contact_sponsors_when_program_allows(self):
        prospect = self._create_customer("Not Yet Customer")
        self.program.sponsor_policy = "any"
        referral = self._refer(sponsor=prospect)
        self.assertEqual(referral.sponsor_id, prospect)

    def test_sponsor_order_in_other_company_does_not_make_it_eligible(self):
        sponsor = self._create_customer("Foreign Customer")
        self._confirm_order(sponsor, company_id=self.other_company.id)
        with self.assertRefused(ValidationError, "may not sponsor"):
            self._refer(sponsor=sponsor)

    def test_referral_refused_without_referee_details(self):
        counts = self._counts()
        with self.assertRefused(ValidationError, "Give at least the name"):
            self.Referral.create({"sponsor_id": self.sponsor.id})
        self.assertNothingWritten(*counts)

    def test_referee_referred_in_each_company(self):
        first = self._refer()
        self._confirm_order(self.sponsor, company_id=self.other_company.id)
        second = self.Referral.with_company(self.other_company).create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_id": first.referee_id.id,
                "company_id": self.other_company.id,
            }
        )
        self.assertEqual(second.program_id.company_id, self.other_company)
        self.assertNotEqual(second.program_id, first.program_id)

    def test_won_referral_cannot_be_deleted(self):
        referral = self._refer()
        self._confirm_order(referral.referee_id)
        self.assertEqual(referral.state, "rewarded")
        with self.assertRefused(UserError, "cannot be deleted"):
            referral.unlink()
        self.assertTrue(referral.exists())

    def test_closing_referral_drops_activities_and_dates_it(self):
        referral = self._refer()
        self.assertEqual(len(referral.activity_ids), 2)
        referral.action_reject()
        self.assertRecordValues(referral, [{"state": "rejected", "activity_ids": []}])
        self.assertTrue(referral.date_closed)
        with self.assertRefused(UserError, "Only new or in-progress"):
            referral.action_mark_lost()
        self.assertEqual(referral.state, "rejected")

    def test_start_sets_contact_date(self):
        referral = self._refer()
        referral.action_start()
        self.assertEqual(referral.state, "in_progress")
        self.assertTrue(referral.date_in_progress)

    def test_refused_referral_leaves_no_contact_even_when_error_caught(self):
        prospect = self._create_customer("Not Yet Customer")
        Partner = self.env["res.partner"].with_context(active_test=False)
        count = Partner.search_count([])
        refused = False
        try:
            self._refer(sponsor=prospect, referee_company_name="Orphan Ltd")
        except ValidationError:
            refused = True
        self.assertTrue(refused, "The referral of an ineligible sponsor was accepted")
        self.assertEqual(Partner.search_count([]), count)
        self.assertFalse(Partner.search([("name", "=", "Orphan Ltd")]))
