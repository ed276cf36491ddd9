# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import re

from odoo.tests import tagged

from .test_portal_referral import CSRF, PortalCommon

# The part of the link page that answers the visitor.
ANSWER = re.compile(r'<div class="container my-5 o_referral_link">(.*?)</main>', re.S)


@tagged("post_install", "-at_install")
class TestReferralLinkAnswersAlike(PortalCommon):
    """The public link answers every visitor the same once its form is
    valid, whoever the email names (a customer, the sponsor, a company
    referred by someone else, a twin of the sponsor): the checks run on the
    server, the outcome is recorded and told to the sponsor and its
    salesperson, never to the visitor."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.customer = cls.env["res.partner"].create(
            {
                "name": "Loyal Customer SA",
                "is_company": True,
                "email": "buy@loyal.example.com",
            }
        )
        cls.env["sale.order"].create(
            {
                "partner_id": cls.customer.id,
                "order_line": [
                    (
                        0,
                        0,
                        {
                            "product_id": cls.env["product.product"]
                            .create({"name": "Audit", "list_price": 500.0})
                            .id
                        },
                    )
                ],
            }
        ).action_confirm()
        cls.referred = cls.env["res.partner"].create(
            {
                "name": "Courted SA",
                "is_company": True,
                "email": "hi@courted.example.com",
            }
        )
        cls.env["referral.referral"].create(
            {"sponsor_id": cls.other_sponsor.id, "referee_id": cls.referred.id}
        )
        cls.url = f"/r/{cls.sponsor.referral_code}"

    def _send(self, **values):
        token = CSRF.search(self.url_open(self.url).text).group(1)
        response = self.url_open(
            self.url, data=dict(self._form(**values), csrf_token=token)
        )
        self.assertEqual(response.status_code, 200)
        return ANSWER.search(response.text).group(1)

    def _attempts(self):
        return self.env["referral.portal.attempt"].search(
            [("sponsor_id", "=", self.sponsor.id)], order="id"
        )

    def test_same_answer_whatever_the_email(self):
        answers = {
            "fresh": self._send(company_name="Fresh SA", email="new@fresh.example.com"),
            "customer": self._send(company_name="Loyal", email="buy@loyal.example.com"),
            "sponsor": self._send(
                company_name="Us", email="office@portal-sponsor.example.com"
            ),
            "referred": self._send(
                company_name="Courted", email="hi@courted.example.com"
            ),
            "twin": self._send(
                company_name="Twin SA", email="twin@portal-sponsor.example.com"
            ),
        }
        self.assertEqual(len(set(answers.values())), 1, answers)
        answer = answers["fresh"]
        self.assertIn("Thank you! We will contact you shortly.", answer)
        for word in ("customer", "already", "referred", "review", "cannot"):
            self.assertNotIn(word, answer.lower())
        # Recorded: the accepted and the held referrals; the refusals in the
        # portal log only.
        referrals = self._referrals()
        self.assertEqual(
            sorted(referrals.mapped(lambda r: (r.referee_company_name, r.state))),
            [("Fresh SA", "new"), ("Twin SA", "to_review")],
        )
        self.assertEqual(set(referrals.mapped("source")), {"code"})
        self.assertRecordValues(
            self._attempts(),
            [
                {
                    "outcome": "accepted",
                    "refusal": False,
                    "referral_id": referrals[1].id,
                },
                {"outcome": "refused", "refusal": "customer", "referral_id": False},
                {"outcome": "refused", "refusal": "own_company", "referral_id": False},
                {
                    "outcome": "refused",
                    "refusal": "already_referred",
                    "referral_id": False,
                },
                {"outcome": "review", "refusal": False, "referral_id": referrals[0].id},
            ],
        )
        self.assertEqual(self.customer.referee_referral_ids.ids, [])

    def test_refusal_told_to_the_sponsor_and_the_salesperson(self):
        self._send(company_name="Loyal Customer", email="buy@loyal.example.com")
        mails = self.env["mail.mail"].search(
            [
                ("model", "=", "referral.portal.attempt"),
                ("res_id", "in", self._attempts().ids),
            ]
        )
        to_sponsor = mails.filtered("recipient_ids")
        to_salesperson = mails - to_sponsor
        self.assertEqual(to_sponsor.recipient_ids, self.sponsor)
        self.assertIn("Loyal Customer", to_sponsor.body_html)
        self.assertIn("Already a customer", to_sponsor.body_html)
        self.assertEqual(to_salesperson.email_to, self.salesman.email_formatted)
        self.assertIn("Already a customer", to_salesperson.body_html)
        self.assertEqual(set(mails.mapped("state")), {"outgoing"}, "queued")

    def test_held_for_review_told_to_the_salesperson(self):
        self._send(company_name="Twin SA", email="twin@portal-sponsor.example.com")
        referral = self._referrals()
        self.assertEqual(referral.state, "to_review")
        mails = self.env["mail.mail"].search(
            [("model", "=", "referral.referral"), ("res_id", "=", referral.id)]
        )
        notice = mails.filtered(lambda m: "New referral from" in m.subject)
        self.assertIn("waits for a review", notice.body_html)

    def test_sponsor_not_allowed_to_sponsor_answered_alike(self):
        self.program.sponsor_policy = "customer"
        answer = self._send(company_name="Fresh SA", email="new@fresh.example.com")
        self.assertIn("Thank you! We will contact you shortly.", answer)
        self.assertFalse(self._referrals())
        self.assertEqual(self._attempts().refusal, "ineligible")

    def test_refused_visits_count_toward_the_daily_limit(self):
        self.program.portal_daily_limit = 2
        for _index in range(2):
            self._send(company_name="Loyal", email="buy@loyal.example.com")
        answer = self._send(company_name="Fresh SA", email="new@fresh.example.com")
        self.assertIn("limit of referrals", answer)
        self.assertFalse(self._referrals())
        self.assertEqual(len(self._attempts()), 2)

    def test_form_errors_still_shown(self):
        """A form to fix says so, whatever the email: nothing depends on who
        the email names."""
        answer = self._send(email="not-an-email")
        self.assertIn("This email address is not valid", answer)
        answer = self._send(consent="")
        self.assertIn("Tick this box", answer)
        self.assertFalse(self._attempts())

    def test_consent_recorded_on_the_referral(self):
        self._send(company_name="Fresh SA", email="new@fresh.example.com")
        referral = self._referrals()
        self.assertTrue(referral.referee_consent_date)
        self.assertEqual(
            referral.referee_consent_text, self.program.portal_consent_text
        )

    def test_sponsor_on_its_portal_is_told_and_its_consent_recorded(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        token = self._csrf("/my/referrals")
        response = self.url_open(
            "/my/referrals",
            data=dict(
                self._form(company_name="Loyal", email="buy@loyal.example.com"),
                csrf_token=token,
            ),
        )
        self.assertIn("This company is already our customer", response.text)
        token = self._csrf("/my/referrals")
        self.url_open("/my/referrals", data=dict(self._form(), csrf_token=token))
        referral = self._referrals()
        self.assertRecordValues(referral, [{"source": "portal", "state": "new"}])
        self.assertTrue(referral.referee_consent_date)
