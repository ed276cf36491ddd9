# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import re

from odoo.tests import HttpCase, JsonRpcException, new_test_user, tagged

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class PortalCommon(HttpCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.program = cls.env.ref("sale_referral_lifecycle.referral_program_default")
        cls.program.write(
            {
                "sponsor_policy": "any",
                "portal_enabled": True,
                "portal_daily_limit": 10,
                "fraud_burst_limit": 5,
            }
        )
        cls.salesman = new_test_user(
            cls.env,
            login="portal_salesman",
            name="Sally Portal",
            email="sally@ourcompany.example.com",
            groups="sales_team.group_sale_salesman",
        )
        cls.sponsor = cls.env["res.partner"].create(
            {
                "name": "Portal Sponsor SA",
                "is_company": True,
                "user_id": cls.salesman.id,
                "email": "office@portal-sponsor.example.com",
            }
        )
        cls.portal_user = new_test_user(
            cls.env,
            login="portal_sponsor",
            password="portal_sponsor",
            name="Paul Sponsor",
            email="paul@portal-sponsor.example.com",
            groups="base.group_portal",
        )
        cls.portal_user.partner_id.parent_id = cls.sponsor
        cls.other_sponsor = cls.env["res.partner"].create(
            {"name": "Other Sponsor SA", "is_company": True}
        )
        cls.other_referral = cls.env["referral.referral"].create(
            {
                "sponsor_id": cls.other_sponsor.id,
                "referee_company_name": "Secret Prospect",
            }
        )

    def _csrf(self, url):
        response = self.url_open(url)
        self.assertEqual(response.status_code, 200)
        return CSRF.search(response.text).group(1)

    def _form(self, **values):
        return dict(
            {
                "company_name": "Fresh Prospect",
                "contact_name": "Fiona Fresh",
                "email": "fiona@fresh-prospect.example.com",
                "phone": "",
                "message": "They need you.",
                "consent": "1",
            },
            **values,
        )

    def _referrals(self, sponsor=None):
        return self.env["referral.referral"].search(
            [("sponsor_id", "=", (sponsor or self.sponsor).id)]
        )


@tagged("post_install", "-at_install")
class TestReferralPortal(PortalCommon):
    def test_portal_user_refers_a_company_routed_to_the_salesperson(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        token = self._csrf("/my/referrals")
        response = self.url_open(
            "/my/referrals", data=dict(self._form(), csrf_token=token)
        )
        self.assertEqual(response.status_code, 200)
        referral = self._referrals()
        self.assertRecordValues(
            referral,
            [{"source": "portal", "state": "new", "user_id": self.salesman.id}],
        )
        self.assertEqual(referral.referee_id.name, "Fresh Prospect")
        self.assertEqual(
            sorted(referral.activity_ids.mapped("summary")),
            ["Call the prospect", "Call the sponsor"],
        )
        self.assertIn(f"/my/referrals/{referral.id}", response.url)
        self.assertIn("Fresh Prospect", response.text)
        listing = self.url_open("/my/referrals")
        self.assertIn(referral.name, listing.text)
        mails = self.env["mail.mail"].search(
            [("model", "=", "referral.referral"), ("res_id", "=", referral.id)]
        )
        to_sponsor = mails.filtered(lambda m: "thank you for referring" in m.subject)
        to_salesperson = mails.filtered(lambda m: "New referral from" in m.subject)
        self.assertEqual(to_sponsor.recipient_ids, self.sponsor)
        self.assertEqual(to_salesperson.email_to, self.salesman.email_formatted)
        self.assertEqual(
            set((to_sponsor | to_salesperson).mapped("state")),
            {"outgoing"},
            "queued, not sent within the request",
        )

    def test_bad_email_shows_the_error_next_to_the_field_and_keeps_values(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        token = self._csrf("/my/referrals")
        response = self.url_open(
            "/my/referrals",
            data=dict(self._form(email="not-an-email"), csrf_token=token),
        )
        self.assertEqual(response.status_code, 200)
        self.assertRegex(
            response.text,
            r'name="email" value="not-an-email"[^>]*is-invalid[^>]*>\s*'
            r'<div class="invalid-feedback">This email address is not valid',
        )
        self.assertIn('value="Fresh Prospect"', response.text)
        self.assertFalse(self._referrals())

    def test_backend_refusal_in_the_customer_words(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        token = self._csrf("/my/referrals")
        response = self.url_open(
            "/my/referrals",
            data=dict(
                self._form(
                    company_name="Portal Sponsor SA",
                    email="office@portal-sponsor.example.com",
                ),
                csrf_token=token,
            ),
        )
        self.assertIn("You cannot refer your own company.", response.text)
        self.assertNotIn("Traceback", response.text)
        self.assertFalse(self._referrals())

    def test_post_without_csrf_token_refused(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        response = self.url_open("/my/referrals", data=self._form())
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self._referrals())

    def test_company_name_with_script_stays_text(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        token = self._csrf("/my/referrals")
        name = "<script>alert('x')</script> Evil Ltd"
        response = self.url_open(
            "/my/referrals",
            data=dict(
                self._form(company_name=name, message="<b>bold</b>"),
                csrf_token=token,
            ),
        )
        self.assertEqual(response.status_code, 200)
        self.assertTrue(self._referrals())
        for url in (response.url, "/my/referrals"):
            page = self.url_open(url).text
            self.assertNotIn("<script>alert('x')</script>", page)
            self.assertIn("&lt;script&gt;alert(", page)
        self.assertNotIn("<b>bold</b>", self._referrals().note)

    def test_other_sponsor_referral_not_found(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        response = self.url_open(f"/my/referrals/{self.other_referral.id}")
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("Secret Prospect", response.text)
        response = self.url_open("/my/referrals/999999999")
        self.assertEqual(response.status_code, 404)
        listing = self.url_open("/my/referrals")
        self.assertNotIn("Secret Prospect", listing.text)

    def test_own_referral_page_without_internal_fields(self):
        referral = self.env["referral.referral"].create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Own Prospect",
                "note": "<p>Internal salesperson note</p>",
            }
        )
        self.authenticate("portal_sponsor", "portal_sponsor")
        response = self.url_open(f"/my/referrals/{referral.id}")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Own Prospect", response.text)
        self.assertNotIn("Internal salesperson note", response.text)
        self.assertIn('id="discussion"', response.text)

    def test_sponsor_adds_a_note_to_its_own_referral_only(self):
        referral = self.env["referral.referral"].create(
            {"sponsor_id": self.sponsor.id, "referee_company_name": "Chat Ltd"}
        )
        self.authenticate("portal_sponsor", "portal_sponsor")
        self.make_jsonrpc_request(
            "/mail/message/post",
            {
                "thread_model": "referral.referral",
                "thread_id": referral.id,
                "post_data": {
                    "body": "They expect your call",
                    "message_type": "comment",
                },
            },
        )
        self.assertIn("They expect your call", referral.message_ids[:1].body)
        self.assertEqual(
            referral.message_ids[:1].author_id, self.portal_user.partner_id
        )
        with self.assertRaisesRegex(JsonRpcException, "(?i)not ?found"):
            self.make_jsonrpc_request(
                "/mail/message/post",
                {
                    "thread_model": "referral.referral",
                    "thread_id": self.other_referral.id,
                    "post_data": {"body": "Intrusion", "message_type": "comment"},
                },
            )
        self.assertNotIn("Intrusion", self.other_referral.message_ids.mapped("body"))

    def test_referral_to_review_shows_no_fraud_flag(self):
        referral = self.env["referral.referral"].create(
            {
                "sponsor_id": self.sponsor.id,
                "referee_company_name": "Twin Ltd",
                "referee_email": "twin@portal-sponsor.example.com",
            }
        )
        self.assertEqual(referral.state, "to_review")
        self.authenticate("portal_sponsor", "portal_sponsor")
        for url in ("/my/referrals", f"/my/referrals/{referral.id}"):
            page = self.url_open(url).text
            self.assertIn("Twin Ltd", page)
            self.assertNotIn("To Review", page)
            self.assertNotIn("email domain", page)

    def test_daily_limit_refuses_with_a_clear_message(self):
        self.program.portal_daily_limit = 2
        self.authenticate("portal_sponsor", "portal_sponsor")
        for index in range(3):
            token = self._csrf("/my/referrals")
            response = self.url_open(
                "/my/referrals",
                data=dict(
                    self._form(
                        company_name=f"Prospect {index}",
                        email=f"p{index}@prospect{index}.example.com",
                    ),
                    csrf_token=token,
                ),
            )
        self.assertIn("You have reached today&#39;s limit of referrals", response.text)
        self.assertEqual(len(self._referrals()), 2)
        self.assertEqual(
            self.env["referral.portal.attempt"].search_count(
                [("sponsor_id", "=", self.sponsor.id)]
            ),
            2,
        )

    def test_home_counters_when_the_program_allows_portal_referrals(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["referral_count", "referral_credit"]}
        )
        # "0" as text: the entry shows even before the first referral.
        self.assertEqual(counters, {"referral_count": "0", "referral_credit": 0})
        self.assertIn("/my/referrals", self.url_open("/my").text)

    def test_portal_disabled_hides_the_pages(self):
        self.program.portal_enabled = False
        self.authenticate("portal_sponsor", "portal_sponsor")
        response = self.url_open("/my/referrals")
        self.assertNotIn("/my/referrals", response.url)
        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["referral_count", "referral_credit"]}
        )
        self.assertEqual(counters, {"referral_count": 0, "referral_credit": 0})

    def test_wallet_shows_own_balance_and_statement(self):
        wallet = self.env["referral.wallet"]._get_or_create(
            self.sponsor, self.env.company
        )
        wallet.sudo()._credit(123.0, name="Reward for Acme")
        other = self.env["referral.wallet"]._get_or_create(
            self.other_sponsor, self.env.company
        )
        other.sudo()._credit(999.0, name="Someone else's reward")
        self.authenticate("portal_sponsor", "portal_sponsor")
        response = self.url_open("/my/wallet")
        self.assertEqual(response.status_code, 200)
        self.assertIn("Reward for Acme", response.text)
        self.assertIn("123.00", response.text)
        self.assertNotIn("Someone else", response.text)
        self.assertIn('action="/my/wallet/statement"', response.text)
        counters = self.make_jsonrpc_request(
            "/my/counters", {"counters": ["referral_count", "referral_credit"]}
        )
        self.assertIn("123.00", counters["referral_credit"])


@tagged("post_install", "-at_install")
class TestReferralLink(PortalCommon):
    def test_visitor_sees_the_sponsor_company_only_and_refers(self):
        url = f"/r/{self.sponsor.referral_code}"
        page = self.url_open(url)
        self.assertEqual(page.status_code, 200)
        self.assertIn("Portal Sponsor SA", page.text)
        self.assertNotIn("office@portal-sponsor.example.com", page.text)
        self.assertNotIn("Paul Sponsor", page.text)
        token = CSRF.search(page.text).group(1)
        response = self.url_open(url, data=dict(self._form(), csrf_token=token))
        self.assertEqual(response.status_code, 200)
        self.assertIn("Thank you!", response.text)
        self.assertRecordValues(
            self._referrals(), [{"source": "code", "user_id": self.salesman.id}]
        )

    def test_honeypot_records_nothing(self):
        url = f"/r/{self.sponsor.referral_code}"
        token = CSRF.search(self.url_open(url).text).group(1)
        response = self.url_open(
            url,
            data=dict(self._form(), csrf_token=token, website_url="http://spam"),
        )
        self.assertEqual(response.status_code, 200)
        self.assertFalse(self._referrals())

    def test_post_without_csrf_token_refused(self):
        response = self.url_open(f"/r/{self.sponsor.referral_code}", data=self._form())
        self.assertEqual(response.status_code, 400)
        self.assertFalse(self._referrals())

    def test_unknown_or_archived_code_not_found(self):
        self.assertEqual(self.url_open("/r/NOSUCHCODE").status_code, 404)
        code = self.other_sponsor.referral_code
        self.other_sponsor.active = False
        self.assertEqual(self.url_open(f"/r/{code}").status_code, 404)

    def test_daily_limit_per_ip(self):
        self.program.portal_daily_limit = 1
        self.env["referral.portal.attempt"]._record(self.other_sponsor, "127.0.0.1")
        url = f"/r/{self.sponsor.referral_code}"
        token = CSRF.search(self.url_open(url).text).group(1)
        response = self.url_open(url, data=dict(self._form(), csrf_token=token))
        self.assertIn("limit of referrals", response.text)
        self.assertFalse(self._referrals())
