# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestPartnerReferralCode(ReferralCommon):
    def test_every_contact_gets_a_readable_unique_code(self):
        partners = self.env["res.partner"].create(
            [{"name": f"P{i}"} for i in range(50)]
        )
        codes = partners.mapped("referral_code")
        self.assertEqual(len(set(codes)), 50)
        for code in codes:
            self.assertRegex(code, r"^[A-HJKMNP-Z2-9]{8}$")

    def test_existing_contacts_got_distinct_codes_at_install(self):
        self.env.cr.execute(
            "SELECT count(*), count(DISTINCT referral_code), count(referral_code) "
            "FROM res_partner"
        )
        total, distinct, filled = self.env.cr.fetchone()
        self.assertEqual(total, distinct)
        self.assertEqual(total, filled)

    def test_copied_contact_gets_a_new_code(self):
        copy = self.sponsor.copy()
        self.assertTrue(copy.referral_code)
        self.assertNotEqual(copy.referral_code, self.sponsor.referral_code)

    def test_manager_regenerates_code(self):
        old = self.sponsor.referral_code
        self.sponsor.with_user(self.sale_manager).action_regenerate_referral_code()
        self.assertNotEqual(self.sponsor.referral_code, old)
        order = self._create_order(self._create_customer("Late Comer"))
        with self.assertRefused(ValidationError, "No customer has the referral code"):
            order.referral_code = old

    def test_salesperson_cannot_regenerate_code(self):
        old = self.sponsor.referral_code
        with self.assertRaises(AccessError):
            self.sponsor.with_user(self.salesman).action_regenerate_referral_code()
        self.assertEqual(self.sponsor.referral_code, old)

    def test_referral_count_and_smart_button(self):
        referrals = self._refer(referee_company_name="One") | self._refer(
            referee_company_name="Two"
        )
        other = self._create_customer("Other Sponsor")
        self._confirm_order(other)
        self._refer(sponsor=other, referee_company_name="Three")
        self.assertEqual(self.sponsor.referral_count, 2)
        self.assertEqual(self.sponsor_contact.referral_count, 2)
        action = self.sponsor_contact.action_view_referrals()
        self.assertEqual(self.Referral.search(action["domain"]), referrals)
        self.assertEqual(action["context"]["default_sponsor_id"], self.sponsor.id)

    def test_sponsor_cleared_when_referral_lost(self):
        referee = self._refer().referee_id
        self.assertEqual(referee.sponsor_id, self.sponsor)
        referee.referee_referral_ids.action_mark_lost()
        self.assertFalse(referee.sponsor_id)
