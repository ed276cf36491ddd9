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
