# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import html
import re
from unittest.mock import patch

from odoo.exceptions import UserError
from odoo.tests import tagged

from .test_portal_referral import PortalCommon

CONTROLLER_LOGGER = "odoo.addons.sale_referral_lifecycle.controllers.portal"


@tagged("post_install", "-at_install")
class TestPortalWalletStatement(PortalCommon):
    """The statement of /my/wallet says what happened: a PDF; without a PDF
    engine on the server, the statement as a portal page that says so; a
    wrong period in its own words; any other failure logged and told as
    such, never as a wrong period."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.wallet = cls.env["referral.wallet"]._get_or_create(
            cls.sponsor, cls.env.company
        )
        cls.wallet.sudo()._credit(123.0, name="Reward for Acme")
        cls.Report = cls.registry["ir.actions.report"]

    def setUp(self):
        super().setUp()
        self.authenticate("portal_sponsor", "portal_sponsor")

    def _engine(self, state):
        return patch.object(self.Report, "get_wkhtmltopdf_state", return_value=state)

    def test_pdf_when_the_engine_is_there(self):
        with (
            self._engine("ok"),
            patch.object(
                self.Report, "_render_qweb_pdf", return_value=(b"%PDF-1.7 x", "pdf")
            ) as render,
        ):
            response = self.url_open(
                "/my/wallet/statement?date_from=2026-01-01&date_to=2026-06-30"
            )
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.headers["Content-Type"], "application/pdf")
        self.assertIn(
            "referral-credit-statement.pdf", response.headers["Content-Disposition"]
        )
        self.assertEqual(response.content, b"%PDF-1.7 x")
        args = render.call_args
        self.assertEqual(args.args[1], self.wallet.ids)
        self.assertEqual(
            args.kwargs["data"], {"date_from": "2026-01-01", "date_to": "2026-06-30"}
        )

    def test_web_page_without_pdf_engine(self):
        """The default period of the wallet page, no wkhtmltopdf: the
        statement itself, on a portal page that says why it is no PDF."""
        for state in ("install", "broken", "workers"):
            with self.subTest(state=state), self._engine(state):
                response = self.url_open("/my/wallet/statement")
                self.assertEqual(response.status_code, 200)
                self.assertIn("text/html", response.headers["Content-Type"])
                self.assertIn("o_referral_statement_no_pdf", response.text)
                self.assertIn("No PDF engine (wkhtmltopdf)", response.text)
                # The statement's own page, as the frame's document (text,
                # not the repr of bytes).
                frame = re.search(r'srcdoc="([^"]*)"', response.text)
                self.assertTrue(html.unescape(frame.group(1)).lstrip().startswith("<"))
                self.assertNotIn("b&#39;", frame.group(1)[:10])
                # The statement is in the page (the frame's document).
                self.assertIn("Referral credit statement", response.text)
                self.assertIn("Reward for Acme", response.text)
                self.assertIn("123.00", response.text)
                self.assertNotIn("The period must start before it ends", response.text)

    def test_period_that_ends_before_it_starts(self):
        response = self.url_open(
            "/my/wallet/statement?date_from=2026-05-01&date_to=2026-04-01"
        )
        self.assertTrue(response.url.endswith("/my/wallet?statement_error=period"))
        self.assertIn("The period must start before it ends.", response.text)

    def test_dates_that_cannot_be_read(self):
        response = self.url_open("/my/wallet/statement?date_from=yesterday")
        self.assertTrue(response.url.endswith("/my/wallet?statement_error=dates"))
        self.assertIn("The dates of the period could not be read", response.text)
        self.assertNotIn("The period must start before it ends", response.text)

    def test_other_failure_logged_and_told_as_such(self):
        """wkhtmltopdf crashing (a UserError of Odoo's), or anything else:
        logged with its traceback, and the sponsor reads that the statement
        could not be made, not that its period is wrong."""
        for error in (
            UserError("Wkhtmltopdf failed (error code: -11)"),
            OSError("disk"),
        ):
            with (
                self.subTest(error=type(error).__name__),
                self._engine("ok"),
                patch.object(self.Report, "_render_qweb_pdf", side_effect=error),
                self.assertLogs(CONTROLLER_LOGGER, "ERROR") as logs,
            ):
                response = self.url_open("/my/wallet/statement")
                self.assertTrue(
                    response.url.endswith("/my/wallet?statement_error=failed")
                )
                self.assertIn("The statement could not be created", response.text)
                self.assertNotIn("The period must start before it ends", response.text)
                self.assertIn(f"wallet {self.wallet.id}", logs.output[0])
                self.assertIn(str(error), "\n".join(logs.output))

    def test_no_wallet_no_statement(self):
        other = self.env["res.partner"].create(
            {"name": "Walletless SA", "is_company": True}
        )
        self.portal_user.partner_id.parent_id = other
        response = self.url_open("/my/wallet/statement")
        self.assertTrue(response.url.endswith("/my/wallet"))
