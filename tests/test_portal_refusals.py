# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralPortalRefusals(ReferralCommon):
    """The back office's refusals, said in the customer's words by the
    portal and the referral link, with nothing written."""

    def _portal_refer(self, sponsor=None, **form):
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
            sponsor or self.sponsor, values, "portal", "10.0.0.1"
        )

    def _assert_refused(self, result, message, field="form"):
        referral, errors = result
        self.assertFalse(referral)
        self.assertEqual(errors.get(field), message)

    def test_refers_and_records_the_attempt(self):
        referral, errors = self._portal_refer()
        self.assertFalse(errors)
        self.assertRecordValues(
            referral, [{"source": "portal", "user_id": self.salesman.id}]
        )
        Attempt = self.env["referral.portal.attempt"]
        self.assertEqual(
            Attempt.search_count(
                [
                    ("sponsor_id", "=", self.sponsor.id),
                    ("ip_hash", "=", Attempt._hash_ip("10.0.0.1")),
                ]
            ),
            1,
        )

    def test_already_referred(self):
        self._portal_refer()
        self._assert_refused(
            self._portal_refer(),
            "This company has already been referred to us. Thank you all the same!",
        )

    def test_existing_customer(self):
        customer = self._create_customer(
            "Old Customer", email="old@old-customer.example.com"
        )
        self._confirm_order(customer)
        self._assert_refused(
            self._portal_refer(email="old@old-customer.example.com"),
            "This company is already our customer: the program rewards new "
            "customers only.",
        )

    def test_cycle(self):
        godparent = self._create_customer(
            "Godparent", email="god@godparent.example.com"
        )
        self._confirm_order(godparent)
        self.program.allow_customer_referee = True
        self._refer(sponsor=godparent, referee_id=self.sponsor.id)
        self._assert_refused(
            self._portal_refer(email="god@godparent.example.com"),
            "This company referred you to us: it cannot be referred back.",
        )

    def test_ineligible_sponsor(self):
        prospect = self._create_customer("Never Ordered")
        self._assert_refused(
            self._portal_refer(sponsor=prospect),
            "Your account cannot refer companies yet: please contact your "
            "salesperson.",
        )

    def test_missing_consent_and_fields(self):
        referral, errors = self._portal_refer(
            company_name=" ", contact_name="", email="", consent=False
        )
        self.assertFalse(referral)
        self.assertEqual(
            set(errors), {"company_name", "contact_name", "email", "consent"}
        )
        self.assertFalse(self.env["referral.portal.attempt"].search_count([]))

    def test_portal_closed(self):
        self.program.portal_enabled = False
        self._assert_refused(
            self._portal_refer(), "Referrals are not open at the moment."
        )

    def test_link_code_remembered_on_the_first_quotation(self):
        referral, _errors = self.Referral.sudo()._portal_create_referral(
            self.sponsor,
            {
                "company_name": "Linked Ltd",
                "contact_name": "Lin Ked",
                "email": "lin@linked.example.com",
                "consent": True,
            },
            "code",
            "10.0.0.2",
        )
        order = self._create_order(referral.referee_id.child_ids[:1])
        self.assertEqual(order.referral_code, self.sponsor.referral_code)
        order.action_confirm()
        self._process_lifecycle_queue()
        self.assertEqual(order.referral_id, referral)
        self.assertEqual(referral.state, "rewarded")
        self.assertEqual(
            self.Referral.search_count([("referee_id", "=", referral.referee_id.id)]),
            1,
        )
