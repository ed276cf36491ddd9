# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from unittest.mock import MagicMock, patch

from odoo.tests import TransactionCase, tagged

ODOO_RUN = Path(__file__).resolve().parent.parent / "dev" / "odoo_run.py"


@tagged("post_install", "-at_install")
class TestDemoCommand(TransactionCase):
    """``make demo`` ends with status 0 when its server is stopped."""

    def _run_demo_stopped_by(self, stop):
        if not ODOO_RUN.is_file():
            self.skipTest("dev/odoo_run.py is not shipped with this copy")
        spec = importlib.util.spec_from_file_location("odoo_run_under_test", ODOO_RUN)
        odoo_run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(odoo_run)
        ctx = SimpleNamespace(pg=MagicMock(), addons_path="", env={})
        args = SimpleNamespace(addon="sale_referral_lifecycle", odoo_args=[])
        # The install succeeds, then the server is stopped by ``stop``.
        with (
            patch.object(odoo_run, "demo_port", return_value=8069),
            patch.object(odoo_run, "free_port", return_value=8070),
            patch.object(odoo_run, "odoo_command", return_value=["odoo"]),
            patch.object(odoo_run, "run_odoo", side_effect=[0, stop(odoo_run)]),
            patch.object(odoo_run, "say"),
        ):
            return odoo_run.run_demo(ctx, args)

    def test_ctrl_c_ends_the_demo_with_status_0(self):
        self.assertEqual(self._run_demo_stopped_by(lambda m: KeyboardInterrupt()), 0)

    def test_sigterm_ends_the_demo_with_status_0(self):
        self.assertEqual(self._run_demo_stopped_by(lambda m: m.Terminated()), 0)


@tagged("post_install", "-at_install")
class TestDemoCommandPdfEngine(TransactionCase):
    """``make demo`` says first whether wkhtmltopdf is there, and how to
    install it when it is not."""

    def _odoo_run(self):
        if not ODOO_RUN.is_file():
            self.skipTest("dev/odoo_run.py is not shipped with this copy")
        spec = importlib.util.spec_from_file_location("odoo_run_pdf_note", ODOO_RUN)
        odoo_run = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(odoo_run)
        return odoo_run

    def _said_by_the_demo(self, odoo_run, wkhtmltopdf):
        ctx = SimpleNamespace(pg=MagicMock(), addons_path="", env={})
        args = SimpleNamespace(addon="sale_referral_lifecycle", odoo_args=[])
        with (
            patch.object(odoo_run.shutil, "which", return_value=wkhtmltopdf),
            patch.object(odoo_run, "demo_port", return_value=8069),
            patch.object(odoo_run, "free_port", return_value=8070),
            patch.object(odoo_run, "odoo_command", return_value=["odoo"]),
            patch.object(odoo_run, "run_odoo", side_effect=[0, KeyboardInterrupt()]),
            patch.object(odoo_run, "say") as say,
        ):
            odoo_run.run_demo(ctx, args)
        return [" ".join(map(str, call.args)) for call in say.call_args_list]

    def test_demo_says_how_to_install_wkhtmltopdf(self):
        odoo_run = self._odoo_run()
        said = self._said_by_the_demo(odoo_run, None)
        self.assertIn("wkhtmltopdf was not found", said[0])
        self.assertIn("apt-get install -y wkhtmltopdf", said[0])
        self.assertIn("Recreating the database", said[1])

    def test_demo_says_wkhtmltopdf_is_there(self):
        odoo_run = self._odoo_run()
        said = self._said_by_the_demo(odoo_run, "/usr/local/bin/wkhtmltopdf")
        self.assertEqual(
            said[0],
            "wkhtmltopdf found (/usr/local/bin/wkhtmltopdf): PDF reports are "
            "available.",
        )
