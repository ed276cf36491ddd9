# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import inspect
import re
from urllib.parse import quote, urlencode

from odoo.tests import tagged

from ..controllers.portal import ReferralPortal
from ..models.referral.referral_referral import PORTAL_FORM_FIELDS
from .test_portal_referral import PortalCommon

# What an attacker types in every parameter.
HOSTILE = {
    "nul": "\x00",
    "nul inside": "Acme\x00Ltd",
    "100,000 characters": "A" * 100_000,
    "control characters": "\x01\x1b[31m\x7f\x9b",
    "line breaks": "Acme\r\nLtd",
    "not a number": "abc",
    "beyond 64 bits": "9" * 30,
    "beyond 32 bits": str(2**31),
    "negative": "-1",
    "zero": "0",
    "unknown id": "999999999",
}
# A query string is bounded by the HTTP server (64 KiB for the request
# line): the long value goes there shortened, in full in forms.
GET_LENGTH = 20_000
# What path parameters get, by converter.
HOSTILE_PATH = {
    "int": ["0", "9" * 30, str(2**31), "999999999", "abc", "-1"],
    "string": ["%00", "A" * GET_LENGTH, "%01%1B", "ZZZZZZZZ", "ab%0Acd", "%C3%A9"],
}
SERVER_ERRORS = ("Traceback", "psycopg2", "InFailedSqlTransaction", "Internal Server")


@tagged("post_install", "-at_install")
class TestPortalHostileInput(PortalCommon):
    """Every route of the referral portal controller, discovered from the
    routing map, walked with hostile values in its path, its query string
    and its form: refused cleanly (400, 404, a form error or a redirect),
    never a server error."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.own_referral = cls.env["referral.referral"].create(
            {"sponsor_id": cls.sponsor.id, "referee_company_name": "Own Prospect"}
        )

    def _controller_routes(self):
        """The rules of the routing map served by ``ReferralPortal``'s own
        routes: {endpoint name: [werkzeug rule]}."""
        names = {
            name
            for name, member in vars(ReferralPortal).items()
            if getattr(member, "original_routing", None)
        }
        routes = {}
        for rule in self.env["ir.http"].routing_map().iter_rules():
            endpoint = rule.endpoint
            bound = getattr(endpoint, "func", None)
            if getattr(endpoint, "__name__", None) in names and isinstance(
                getattr(bound, "__self__", None), ReferralPortal
            ):
                routes.setdefault(endpoint.__name__, []).append(rule)
        self.assertEqual(set(routes), names, "every route is in the routing map")
        for name in names:
            self.assertTrue(
                getattr(
                    getattr(ReferralPortal, name).original_endpoint,
                    "checked_route",
                    False,
                ),
                f"{name} goes through checked_route",
            )
        return routes

    def _valid_path_values(self):
        return {
            "page": "1",
            "referral_id": str(self.own_referral.id),
            "code": self.sponsor.referral_code,
        }

    def _url(self, rule, **path_values):
        values = dict(self._valid_path_values(), **path_values)
        return re.sub(r"<(?:[^:>]+:)?([^>]+)>", lambda m: values[m.group(1)], rule.rule)

    def _assert_clean(self, response, what):
        self.assertIn(
            response.status_code, (200, 302, 303, 400, 404), f"{what}: {response}"
        )
        for text in SERVER_ERRORS:
            self.assertNotIn(text, response.text, what)

    def _walk(self, routes):
        token = self._csrf(f"/r/{self.sponsor.referral_code}")
        requests = 0
        for name, rules in routes.items():
            endpoint = getattr(ReferralPortal, name)
            params = [
                param.name
                for param in inspect.signature(endpoint).parameters.values()
                if param.kind is param.POSITIONAL_OR_KEYWORD and param.name != "self"
            ]
            for rule in rules:
                # The path: each argument with each hostile value.
                for argument, converter in rule._converters.items():
                    kind = "int" if "Int" in type(converter).__name__ else "string"
                    for value in HOSTILE_PATH[kind]:
                        url = self._url(rule, **{argument: value})
                        response = self.url_open(url, allow_redirects=False)
                        self._assert_clean(response, f"GET {url[:80]}")
                        requests += 1
            rule = rules[0]
            url = self._url(rule)
            query_params = [p for p in params if p not in rule.arguments]
            form_params = query_params + [
                *PORTAL_FORM_FIELDS,
                "consent",
                "website_url",
            ]
            for label, value in HOSTILE.items():
                for param in query_params:
                    query = urlencode({param: value[:GET_LENGTH]})
                    response = self.url_open(f"{url}?{query}", allow_redirects=False)
                    self._assert_clean(response, f"GET {url} {param}={label}")
                    requests += 1
                if "POST" not in (rule.methods or ()):
                    continue
                for param in form_params:
                    data = dict(self._form(), csrf_token=token, **{param: value})
                    response = self.url_open(url, data=data, allow_redirects=False)
                    self._assert_clean(response, f"POST {url} {param}={label}")
                    requests += 1
        return requests

    def test_every_route_refuses_hostile_values_cleanly(self):
        routes = self._controller_routes()
        self.authenticate("portal_sponsor", "portal_sponsor")
        self.assertGreater(self._walk(routes), 100)
        # Anonymous: the public routes (the others send to the login page).
        self.authenticate(None, None)
        public = {
            name: rules
            for name, rules in routes.items()
            if rules[0].endpoint.routing["auth"] == "public"
        }
        self.assertTrue(public)
        self._walk(public)

    # ------------------------------------------------- the reported cases

    def _post_link(self, **values):
        url = f"/r/{self.sponsor.referral_code}"
        token = self._csrf(url)
        return self.url_open(url, data=dict(self._form(**values), csrf_token=token))

    def _counts(self):
        return [
            self.env[model].with_context(active_test=False).search_count([])
            for model in ("referral.referral", "res.partner", "referral.portal.attempt")
        ]

    def test_huge_name_or_phone_on_the_link_refused(self):
        before = self._counts()
        for field in ("company_name", "contact_name", "phone", "email", "message"):
            response = self._post_link(**{field: "7" * 100_000})
            self.assertEqual(response.status_code, 400, field)
            self.assertNotIn("psycopg2", response.text)
        self.assertEqual(self._counts(), before)

    def test_too_long_field_shown_in_the_form(self):
        before = self._counts()
        response = self._post_link(company_name="B" * 129, phone="1" * 65)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(
            response.text.count("Keep it under"), 2, "one message per field"
        )
        self.assertIn('value="' + "B" * 129, response.text, "the values kept")
        self.assertEqual(self._counts(), before)

    def test_nul_and_control_characters_refused(self):
        before = self._counts()
        for value in ("Acme\x00Ltd", "Acme\x1bLtd", "Acme\nLtd"):
            response = self._post_link(company_name=value)
            self.assertEqual(response.status_code, 400, repr(value))
        self.assertEqual(self.url_open("/r/AB%00CD").status_code, 400)
        self.assertEqual(self._counts(), before)

    def test_pasted_tab_becomes_a_space(self):
        response = self._post_link(company_name="Tabbed\tTrading", phone="+32\t2 555")
        self.assertEqual(response.status_code, 200)
        self.assertRecordValues(
            self._referrals() - self.own_referral,
            [{"referee_company_name": "Tabbed Trading", "referee_phone": "+32 2 555"}],
        )

    def test_numbers_in_urls_parsed(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        for url in (
            "/my/wallet?page=abc",
            "/my/wallet?page=" + "9" * 30,
            "/my/wallet/page/" + "9" * 30,
            "/my/wallet/page/0",
            "/my/referrals?page=1e9",
            "/my/referrals/page/" + str(2**63),
            "/my/referrals/" + str(2**31),
            "/my/referrals/" + "9" * 30,
            f"/my/referrals/{self.other_referral.id}",
        ):
            self.assertEqual(self.url_open(url).status_code, 404, url)
        for url in ("/my/wallet?page=2", "/my/referrals?page=3"):
            self.assertEqual(self.url_open(url).status_code, 200, url)

    def test_statement_dates_checked(self):
        self.authenticate("portal_sponsor", "portal_sponsor")
        self.env["referral.wallet"]._get_or_create(self.sponsor, self.env.company)
        for query in (
            "date_from=abc",
            "date_to=2026-13-45",
            "date_from=" + quote("\x00"),
        ):
            response = self.url_open(
                f"/my/wallet/statement?{query}", allow_redirects=False
            )
            self.assertIn(response.status_code, (303, 400), query)
