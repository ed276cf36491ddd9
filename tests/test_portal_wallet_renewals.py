# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The sponsor's choice on /my/wallet: apply its credit by itself on its
renewals or not, and the most one renewal takes. A form with CSRF whose
input is read strictly: anything else is refused with nothing written, and
only the user's own wallet is ever changed."""

from odoo.tests import new_test_user, tagged

from .test_portal_referral import PortalCommon

URL = "/my/wallet/renewals"
SERVER_ERRORS = ("Traceback", "psycopg2", "Internal Server")


@tagged("post_install", "-at_install")
class TestPortalWalletRenewals(PortalCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        Wallet = cls.env["referral.wallet"]
        cls.wallet = Wallet._get_or_create(cls.sponsor, cls.env.company)
        cls.wallet.sudo()._credit(200.0, name="Reward for Acme")
        cls.other_wallet = Wallet._get_or_create(cls.other_sponsor, cls.env.company)
        cls.other_wallet.sudo()._credit(50.0, name="Reward for Other")

    def setUp(self):
        super().setUp()
        self.authenticate("portal_sponsor", "portal_sponsor")

    def _post(self, token=None, **values):
        data = dict(values)
        data["csrf_token"] = token or self._csrf("/my/wallet")
        return self.url_open(URL, data=data)

    def _choices(self, wallet=None):
        wallet = wallet or self.wallet
        wallet.invalidate_recordset()
        return wallet.renewal_auto_apply, wallet.renewal_max_amount

    def test_form_shows_the_current_choice(self):
        response = self.url_open("/my/wallet")
        self.assertEqual(response.status_code, 200)
        self.assertIn("o_referral_renewals", response.text)
        self.assertIn('action="/my/wallet/renewals"', response.text)
        self.assertIn('name="csrf_token"', response.text)
        self.assertRegex(response.text, r'name="auto_apply"[^>]*checked')
        self.wallet.write({"renewal_auto_apply": False, "renewal_max_amount": 75.5})
        response = self.url_open("/my/wallet")
        self.assertNotRegex(response.text, r'name="auto_apply"[^>]*checked')
        self.assertIn('value="75.50"', response.text)

    def test_sponsor_saves_its_choice(self):
        response = self._post(auto_apply="1", max_amount="150,50")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.url.endswith("/my/wallet?renewals_saved=1"))
        self.assertIn("Your choice is saved.", response.text)
        self.assertEqual(self._choices(), (True, 150.5))
        # Unticked and emptied: no automatic application, no own limit.
        self._post(max_amount="")
        self.assertEqual(self._choices(), (False, 0.0))
        # The salesperson reads it on the wallet, with its history.
        wallet = self.wallet.with_user(self.salesman)
        self.assertEqual(wallet.renewal_auto_apply, False)
        self.assertTrue(
            self.wallet.message_ids.tracking_value_ids.filtered(
                lambda t: t.field_id.name == "renewal_max_amount"
            )
        )

    def test_without_csrf_token_nothing_written(self):
        response = self.url_open(URL, data={"auto_apply": "", "max_amount": "5"})
        self.assertEqual(response.status_code, 400)
        response = self._post(token="forged", max_amount="5")
        self.assertEqual(response.status_code, 400)
        self.assertEqual(self._choices(), (True, 0.0))

    def test_get_is_not_a_way_in(self):
        """A link followed (an image, a crafted URL) changes nothing."""
        response = self.url_open(f"{URL}?auto_apply=&max_amount=5")
        self.assertEqual(response.status_code, 200)
        self.assertTrue(response.url.endswith("/my/wallet"))
        self.assertEqual(self._choices(), (True, 0.0))

    def test_invalid_amounts_refused_in_the_form(self):
        for value in (
            "-10",
            "abc",
            "1e3",
            "10.001",
            "1.2.3",
            "nan",
            "inf",
            "9" * 14,
            "1000000001",
            "١٠",
            "0x10",
            " - 5",
        ):
            with self.subTest(value=value):
                response = self._post(auto_apply="1", max_amount=value)
                self.assertEqual(response.status_code, 200)
                self.assertIn("o_referral_renewals_error", response.text)
                self.assertNotIn("Your choice is saved.", response.text)
                for marker in SERVER_ERRORS:
                    self.assertNotIn(marker, response.text)
                self.assertEqual(self._choices(), (True, 0.0))

    def test_checkbox_with_another_value_refused(self):
        response = self._post(auto_apply="yes please", max_amount="5")
        self.assertIn("o_referral_renewals_error", response.text)
        self.assertEqual(self._choices(), (True, 0.0))

    def test_nul_byte_and_huge_input_refused(self):
        for values in (
            {"max_amount": "5\x00"},
            {"auto_apply": "1\x00", "max_amount": "5"},
            {"max_amount": "9" * 100_000},
            {"max_amount": "\x1b[31m5"},
        ):
            with self.subTest(values=list(values)):
                response = self._post(**values)
                self.assertEqual(response.status_code, 400)
                for marker in SERVER_ERRORS:
                    self.assertNotIn(marker, response.text)
        self.assertEqual(self._choices(), (True, 0.0))

    def test_another_partners_id_is_ignored(self):
        """Ids of another sponsor, its wallet or company sent with the form
        change nothing but the user's own wallet."""
        response = self._post(
            auto_apply="",
            max_amount="12",
            partner_id=str(self.other_sponsor.id),
            wallet_id=str(self.other_wallet.id),
            company_id="999999",
        )
        self.assertTrue(response.url.endswith("/my/wallet?renewals_saved=1"))
        self.assertEqual(self._choices(), (False, 12.0))
        self.assertEqual(self._choices(self.other_wallet), (True, 0.0))

    def test_portal_user_without_wallet_writes_nothing(self):
        new_test_user(
            self.env,
            login="portal_walletless",
            password="portal_walletless",
            groups="base.group_portal",
        )
        self.authenticate("portal_walletless", "portal_walletless")
        count = self.env["referral.wallet"].search_count([])
        page = self.url_open("/my/wallet")
        self.assertNotIn("o_referral_renewals", page.text)
        # A token of the session, from another page.
        response = self._post(token=self._csrf("/my/referrals"), max_amount="5")
        self.assertTrue(response.url.endswith("/my/wallet"))
        self.assertEqual(self.env["referral.wallet"].search_count([]), count)
        self.assertEqual(self._choices(self.other_wallet), (True, 0.0))

    def test_public_visitor_writes_nothing(self):
        self.authenticate(None, None)
        response = self.url_open(URL, data={"max_amount": "5"})
        self.assertTrue(
            response.status_code == 400 or "/web/login" in response.url,
            (response.status_code, response.url),
        )
        self.assertEqual(self._choices(), (True, 0.0))

    def test_program_closed_to_the_portal_writes_nothing(self):
        token = self._csrf("/my/wallet")
        self.program.portal_enabled = False
        response = self._post(token=token, auto_apply="", max_amount="5")
        self.assertTrue(response.url.endswith("/my"))
        self.assertEqual(self._choices(), (True, 0.0))
