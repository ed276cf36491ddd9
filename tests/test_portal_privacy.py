# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import importlib.util
from datetime import datetime
from pathlib import Path

from freezegun import freeze_time

from odoo.exceptions import ValidationError
from odoo.tests import tagged
from odoo.tools import sql

from .common import ReferralCommon

MIGRATION = (
    Path(__file__).resolve().parent.parent
    / "migrations"
    / "18.0.1.2.0"
    / "post-migration.py"
)


@tagged("post_install", "-at_install")
class TestPortalPrivacy(ReferralCommon):
    """The portal log keeps the senders' IP addresses as keyed hashes only,
    for the program's retention; the referee's consent is on the
    referral."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.Attempt = cls.env["referral.portal.attempt"]
        cls.program.write({"portal_enabled": True, "portal_daily_limit": 2})

    def _refer_from_portal(self, ip_address, **form):
        return self.Referral._portal_create_referral(
            self.sponsor,
            dict(
                {
                    "company_name": "Private Prospect",
                    "contact_name": "Pia Private",
                    "email": "pia@private-prospect.example.com",
                    "consent": True,
                },
                **form,
            ),
            "portal",
            ip_address,
        )

    def _table_text(self):
        self.env.flush_all()
        self.env.cr.execute(
            "SELECT string_agg(row_to_json(a)::text, ' ') "
            "FROM referral_portal_attempt a"
        )
        return self.env.cr.fetchone()[0] or ""

    def test_ip_address_kept_as_a_keyed_hash(self):
        referral, errors = self._refer_from_portal("203.0.113.7")
        self.assertFalse(errors)
        attempt = self.Attempt.search([("referral_id", "=", referral.id)])
        self.assertEqual(len(attempt.ip_hash), 64)
        self.assertNotIn("203.0.113.7", self._table_text())
        self.assertNotIn("ip_address", self.Attempt._fields)
        # Keyed with the database secret: another secret, another hash.
        self.assertEqual(attempt.ip_hash, self.Attempt._hash_ip("203.0.113.7"))
        self.env["ir.config_parameter"].set_param("database.secret", "another")
        self.assertNotEqual(attempt.ip_hash, self.Attempt._hash_ip("203.0.113.7"))

    def test_daily_limit_per_address_counts_the_hashes(self):
        other = self._create_customer("Other Sponsor")
        self._confirm_order(other)
        self.Attempt._record(other, "203.0.113.8")
        self.Attempt._record(other, "203.0.113.8")
        _referral, errors = self._refer_from_portal("203.0.113.8")
        self.assertIn("limit", errors["form"])
        referral, errors = self._refer_from_portal("203.0.113.9")
        self.assertFalse(errors)

    def test_log_purged_after_the_program_retention(self):
        other = self.env["referral.program"].search(
            [("company_id", "=", self.other_company.id)], limit=1
        )
        self.program.portal_log_retention_days = 10
        other.portal_log_retention_days = 60
        with freeze_time("2026-01-01 12:00:00"):
            here = self.Attempt._record(
                self.sponsor, "198.51.100.1", program_id=self.program.id
            )
            there = self.Attempt._record(
                self.sponsor, "198.51.100.2", program_id=other.id
            )
            orphan = self.Attempt._record(self.sponsor, "198.51.100.3")
        with freeze_time("2026-01-10 12:00:00"):
            self.Attempt._gc_old_attempts()
            self.assertEqual((here | there | orphan).exists(), here | there | orphan)
        with freeze_time(datetime(2026, 1, 12)):
            self.Attempt._gc_old_attempts()
            self.assertEqual((here | there | orphan).exists(), there | orphan)
        with freeze_time(datetime(2026, 2, 1)):
            self.Attempt._gc_old_attempts()
            self.assertEqual((there | orphan).exists(), there, "30 days by default")
        with freeze_time(datetime(2026, 3, 3)):
            self.Attempt._gc_old_attempts()
            self.assertFalse(there.exists())

    def test_retention_of_at_least_a_day(self):
        with self.assertRefused(ValidationError, "at least one day"):
            self.program.portal_log_retention_days = 0

    def test_migration_hashes_the_addresses_kept_in_clear(self):
        """A database of the previous version: its clear addresses become
        hashes and their column goes away."""
        cr = self.env.cr
        attempt = self.Attempt._record(self.sponsor, False)
        self.env.flush_all()
        cr.execute("ALTER TABLE referral_portal_attempt ADD COLUMN ip_address varchar")
        cr.execute(
            "UPDATE referral_portal_attempt SET ip_address = '192.0.2.44' "
            "WHERE id = %s",
            [attempt.id],
        )
        spec = importlib.util.spec_from_file_location("post_migration", MIGRATION)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        module.migrate(cr, "18.0.1.1.0")
        self.assertFalse(sql.column_exists(cr, "referral_portal_attempt", "ip_address"))
        attempt.invalidate_recordset()
        self.assertEqual(attempt.ip_hash, self.Attempt._hash_ip("192.0.2.44"))
        self.assertNotIn("192.0.2.44", self._table_text())

    def test_consent_recorded_with_its_wording(self):
        self.program.portal_consent_text = "My contact agreed to be called"
        referral, _errors = self._refer_from_portal("203.0.113.10")
        self.assertRecordValues(
            referral, [{"referee_consent_text": "My contact agreed to be called"}]
        )
        self.assertTrue(referral.referee_consent_date)
        _referral, errors = self._refer_from_portal(
            "203.0.113.10", consent=False, email="other@other-prospect.example.com"
        )
        self.assertIn("consent", errors)
