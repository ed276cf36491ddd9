# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date
from pathlib import Path

from odoo.tests import tagged

from .common import ReferralCommon

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
CONTACT_FIELDS = [
    "name",
    "is_company",
    "email",
    "first_contact_date",
    "first_contact_source_id",
    "first_contact_medium_id",
]
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


@tagged("post_install", "-at_install")
class TestLifecycleImport(ReferralCommon):
    """Contacts imported with Odoo's import (base_import) land in the first
    stage with their first contact."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.suspect = cls.env.ref("sale_referral_lifecycle.stage_suspect")

    def _import(self, content, extension, user=None):
        env = self.env(user=user) if user else self.env
        wizard = env["base_import.import"].create(
            {
                "res_model": "res.partner",
                "file": content,
                "file_name": f"contacts.{extension}",
                "file_type": MIMETYPES[extension],
            }
        )
        options = {
            "has_headers": True,
            "quoting": '"',
            "separator": ",",
            "date_format": "%Y-%m-%d",
        }
        return wizard.execute_import(CONTACT_FIELDS, CONTACT_FIELDS, options)

    def _sample(self, extension):
        return (SAMPLES / f"contacts.{extension}").read_bytes()

    def _check_imported(self, result):
        self.assertFalse(result["messages"])
        partners = self.env["res.partner"].browse(result["ids"])
        self.assertEqual(len(partners), 3)
        alder = partners.filtered(lambda p: p.name == "Alder Joinery")
        self.assertRecordValues(
            alder,
            [
                {
                    "lifecycle_stage_id": self.suspect.id,
                    "first_contact_date": date(2026, 1, 12),
                    "first_contact_source_id": self.env.ref(
                        "utm.utm_source_newsletter"
                    ).id,
                    "first_contact_medium_id": self.env.ref("utm.utm_medium_email").id,
                }
            ],
        )
        self.assertEqual(partners.lifecycle_history_ids.to_stage_id, self.suspect)
        self.assertEqual(len(partners.lifecycle_history_ids), 3)

    def test_csv_sample_imports_suspects(self):
        self._check_imported(self._import(self._sample("csv"), "csv", self.salesman))

    def test_xlsx_sample_imports_suspects(self):
        self._check_imported(self._import(self._sample("xlsx"), "xlsx"))

    def test_bad_row_names_the_row_and_writes_nothing(self):
        content = self._sample("csv").replace(b"2026-02-03", b"2026-02-31")
        before = self.env["res.partner"].search_count([])
        history = self.env["partner.lifecycle.history"].search_count([])
        result = self._import(content, "csv")
        self.assertFalse(result.get("ids"))
        self.assertEqual(len(result["messages"]), 1, result["messages"])
        # The second data row, named in the message.
        self.assertIn("line 2", result["messages"][0]["message"])
        self.assertEqual(result["messages"][0]["field_path"], ["first_contact_date"])
        self.assertEqual(self.env["res.partner"].search_count([]), before)
        self.assertEqual(
            self.env["partner.lifecycle.history"].search_count([]), history
        )
