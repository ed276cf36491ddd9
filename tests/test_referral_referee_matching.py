# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestRefereeMatching(ReferralCommon):
    def _partner_count(self):
        return self.env["res.partner"].with_context(active_test=False).search_count([])

    def test_referee_matched_by_normalised_email(self):
        company = self._create_customer("Known Prospect")
        contact = self.env["res.partner"].create(
            {
                "name": "Kim Known",
                "parent_id": company.id,
                "email": "kim@known.example.com",
            }
        )
        count = self._partner_count()
        referral = self._refer(
            referee_company_name="Known Prospect SA",
            referee_email='"Kim" <KIM@Known.Example.com>',
        )
        self.assertEqual(referral.referee_id, company)
        self.assertEqual(contact.commercial_partner_id, referral.referee_id)
        self.assertEqual(self._partner_count(), count)

    def test_referee_matched_by_company_name_and_vat(self):
        company = self._create_customer("Acme Industries", vat="BE0477472701")
        count = self._partner_count()
        referral = self._refer(
            referee_company_name="ACME industries", referee_vat="be 0477 472 701"
        )
        self.assertEqual(referral.referee_id, company)
        self.assertEqual(self._partner_count(), count)

    def test_same_name_without_vat_creates_a_new_company(self):
        company = self._create_customer("Acme Industries", vat="BE0477472701")
        referral = self._refer(referee_company_name="Acme Industries")
        self.assertNotEqual(referral.referee_id, company)

    def test_unknown_referee_created_as_company_with_contact(self):
        count = self._partner_count()
        referral = self._refer(
            referee_company_name="Fresh Prospect",
            referee_contact_name="Paula Fresh",
            referee_email="paula@fresh.example.com",
            referee_phone="+33 1 23 45 67 89",
            referee_vat="FR23334175221",
        )
        company = referral.referee_id
        self.assertEqual(self._partner_count(), count + 2)
        self.assertRecordValues(
            company,
            [
                {
                    "name": "Fresh Prospect",
                    "is_company": True,
                    "vat": "FR23334175221",
                    "user_id": self.salesman.id,
                    "sponsor_id": self.sponsor.id,
                }
            ],
        )
        self.assertRecordValues(
            company.child_ids,
            [
                {
                    "name": "Paula Fresh",
                    "email": "paula@fresh.example.com",
                    "phone": "+33 1 23 45 67 89",
                }
            ],
        )

    def test_unknown_person_created_as_individual(self):
        referral = self._refer(
            referee_company_name=False,
            referee_contact_name="Ivan Individual",
            referee_email="ivan@example.com",
        )
        self.assertRecordValues(
            referral.referee_id,
            [
                {
                    "name": "Ivan Individual",
                    "is_company": False,
                    "email": "ivan@example.com",
                }
            ],
        )

    def test_same_details_twice_do_not_duplicate_the_contact(self):
        first = self._refer(referee_email="dup@example.com")
        first.action_mark_lost()
        count = self._partner_count()
        second = self._refer(referee_email="dup@example.com")
        self.assertEqual(second.referee_id, first.referee_id)
        self.assertEqual(self._partner_count(), count)

    def test_sponsor_and_referee_stored_as_commercial_entities(self):
        prospect = self._create_customer("Prospect Group")
        person = self.env["res.partner"].create(
            {"name": "Pat Prospect", "parent_id": prospect.id}
        )
        referral = self._refer(sponsor=self.sponsor_contact, referee_id=person.id)
        self.assertEqual(referral.sponsor_id, self.sponsor)
        self.assertEqual(referral.referee_id, prospect)
