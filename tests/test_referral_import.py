# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date
from pathlib import Path

from odoo.exceptions import ValidationError
from odoo.tests import new_test_user, tagged

from .common import ReferralCommon

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
# The columns of the samples, named by the fields' labels, and the fields the
# import dialog maps them to.
REFERRAL_FIELDS = [
    "sponsor_ref",
    "referee_company_name",
    "referee_contact_name",
    "referee_email",
    "referee_phone",
    "referee_vat",
    "date_referral",
]
MIMETYPES = {
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SPONSOR_CODE = "KP7RM4TX"


@tagged("post_install", "-at_install")
class TestReferralImport(ReferralCommon):
    """Referrals imported with Odoo's import (base_import), as the import
    dialog does it: the sponsor by name, email or referral code, matched and
    routed like a referral entered by hand; a refused row names itself and
    nothing of the file is written."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env.user.tz = "Europe/Brussels"
        cls.env.company.partner_id.tz = "Europe/Brussels"
        cls.env.company.resource_calendar_id.tz = "Europe/Brussels"
        # The sponsors of the samples: named by name, email and code.
        cls.juniper = cls._create_customer(
            "Juniper Outfitters",
            user_id=cls.salesman.id,
            email="office@juniper-outfitters.example.com",
        )
        cls.quartz = cls._create_customer(
            "Quartz Print",
            user_id=cls.salesman_2.id,
            email="accounts@quartz-print.example.com",
        )
        cls.quartz_buyer = cls.env["res.partner"].create(
            {
                "name": "Quentin Buyer",
                "parent_id": cls.quartz.id,
                "email": "buyer@quartz-print.example.com",
            }
        )
        cls.rowan = cls._create_customer(
            "Rowan Consulting",
            user_id=cls.salesman_all.id,
            email="contact@rowan-consulting.example.com",
        )
        cls.rowan.referral_code = SPONSOR_CODE
        for sponsor in cls.juniper | cls.quartz | cls.rowan:
            cls._confirm_order(sponsor)
        # The third row's referee is already a contact, without salesperson.
        cls.hazel = cls._create_customer(
            "Hazel Architects",
            email="studio@hazel-architects.example.com",
            first_contact_date=date(2025, 11, 3),
            first_contact_source_id=cls.env.ref("utm.utm_source_newsletter").id,
        )
        cls.referral_source = cls.env.ref("sale_referral_lifecycle.utm_source_referral")

    def _sample(self, extension):
        return (SAMPLES / f"referrals.{extension}").read_bytes()

    def _import(self, content, extension="csv", user=None, dryrun=False, company=None):
        """Import ``content`` as the dialog does: upload, preview (the
        columns mapped by their labels), then import."""
        env = self.env(user=user) if user else self.env
        if company:
            env = env(context=dict(env.context, allowed_company_ids=company.ids))
        wizard = env["base_import.import"].create(
            {
                "res_model": "referral.referral",
                "file": content,
                "file_name": f"referrals.{extension}",
                "file_type": MIMETYPES[extension],
            }
        )
        preview = wizard.parse_preview(
            {
                "has_headers": True,
                "quoting": '"',
                "separator": ",",
                "date_format": "%Y-%m-%d",
                "datetime_format": "",
            }
        )
        self.assertFalse(preview.get("error"), preview.get("error"))
        matches = preview["matches"]
        fields = [
            "/".join(matches[index]) if index in matches else False
            for index in range(len(preview["headers"]))
        ]
        self.assertEqual(fields, REFERRAL_FIELDS)
        return wizard.execute_import(
            fields, preview["headers"], preview["options"], dryrun=dryrun
        )

    def _counts(self):
        """Counts of what an import writes: referrals, contacts, activities,
        stage history."""
        return [
            self.env[model].with_context(active_test=False).search_count([])
            for model in (
                "referral.referral",
                "res.partner",
                "mail.activity",
                "partner.lifecycle.history",
            )
        ]

    def _assert_refused(self, content, expected, extension="csv", company=None):
        """Import ``content``: each ``(row, text)`` of ``expected`` is an
        error naming the row; nothing is written."""
        before = self._counts()
        result = self._import(content, extension, user=self.salesman, company=company)
        self.assertFalse(result["ids"])
        errors = [m for m in result["messages"] if m["type"] == "error"]
        self.assertEqual(len(errors), len(expected), result["messages"])
        for message, (row, text) in zip(errors, expected, strict=True):
            self.assertEqual(message["rows"]["from"], row - 1)
            self.assertIn(f"Row {row}: ", message["message"])
            self.assertIn(text, message["message"])
        self.assertEqual(self._counts(), before)
        return errors

    def _check_imported(self, result):
        self.assertFalse(result["messages"])
        referrals = self.Referral.browse(result["ids"])
        self.assertEqual(len(referrals), 3)
        maple, willow, hazel = referrals
        self.assertRecordValues(
            referrals,
            [
                {
                    "source": "import",
                    "state": "new",
                    "sponsor_id": self.juniper.id,
                    "user_id": self.salesman.id,
                    "referee_company_name": "Maple Dental",
                    "referee_contact_name": "Marc Lemaire",
                    "referee_email": "marc@maple-dental.example.com",
                    "referee_phone": "+33 1 40 20 30 40",
                },
                {
                    "source": "import",
                    "state": "new",
                    # The contact's email names its company.
                    "sponsor_id": self.quartz.id,
                    "user_id": self.salesman_2.id,
                    "referee_company_name": "Willow Bakery",
                    "referee_contact_name": False,
                    "referee_email": "hello@willow-bakery.example.com",
                    "referee_phone": False,
                },
                {
                    "source": "import",
                    "state": "new",
                    "sponsor_id": self.rowan.id,
                    "user_id": self.salesman_all.id,
                    "referee_company_name": "Hazel Architects",
                    "referee_contact_name": "Hugo Hazel",
                    "referee_email": "studio@hazel-architects.example.com",
                    "referee_phone": False,
                },
            ],
        )
        self.assertEqual(hazel.referee_id, self.hazel)
        # Dates in the user's time zone, as the dialog reads them.
        self.assertEqual(
            [
                self.Referral._get_referral_day({"date_referral": r.date_referral})
                for r in referrals
            ],
            [date(2026, 3, 2), date(2026, 3, 5), date(2026, 3, 9)],
        )
        # New referees: routed to the sponsor's salesperson, first contact on
        # the referral's day through the Referral source, Suspect at once.
        suspect = self.env.ref("sale_referral_lifecycle.stage_suspect")
        self.assertRecordValues(
            maple.referee_id | willow.referee_id,
            [
                {
                    "name": "Maple Dental",
                    "is_company": True,
                    "user_id": self.salesman.id,
                    "first_contact_date": date(2026, 3, 2),
                    "first_contact_source_id": self.referral_source.id,
                    "lifecycle_stage_id": suspect.id,
                },
                {
                    "name": "Willow Bakery",
                    "is_company": True,
                    "user_id": self.salesman_2.id,
                    "first_contact_date": date(2026, 3, 5),
                    "first_contact_source_id": self.referral_source.id,
                    "lifecycle_stage_id": suspect.id,
                },
            ],
        )
        self.assertRecordValues(
            maple.referee_id.child_ids,
            [{"name": "Marc Lemaire", "email": "marc@maple-dental.example.com"}],
        )
        # The existing referee: routed, its first contact kept.
        self.assertRecordValues(
            self.hazel,
            [
                {
                    "user_id": self.salesman_all.id,
                    "first_contact_date": date(2025, 11, 3),
                    "first_contact_source_id": self.env.ref(
                        "utm.utm_source_newsletter"
                    ).id,
                }
            ],
        )
        # The program's calls, planned for the sponsor's salesperson.
        for referral in referrals:
            self.assertEqual(len(referral.activity_ids), 2)
            self.assertEqual(referral.activity_ids.user_id, referral.user_id)
        return referrals

    def test_csv_sample_imported_by_a_salesperson(self):
        self._check_imported(self._import(self._sample("csv"), user=self.salesman))

    def test_xlsx_sample_imported(self):
        self._check_imported(self._import(self._sample("xlsx"), "xlsx"))

    def test_dry_run_writes_nothing(self):
        """The dialog's *Test* button: no error, nothing written."""
        before = self._counts()
        result = self._import(self._sample("csv"), user=self.salesman, dryrun=True)
        self.assertFalse(result["messages"])
        self.assertEqual(self._counts(), before)

    def test_sponsor_by_contact_name_is_its_company(self):
        content = self._sample("csv").replace(b"Juniper Outfitters", b"quentin BUYER")
        referrals = self.Referral.browse(self._import(content)["ids"])
        self.assertEqual(referrals[0].sponsor_id, self.quartz)

    def test_referee_held_for_review_like_by_hand(self):
        """Fraud checks apply: a referee sharing its sponsor's email domain
        waits for a review, without activities."""
        content = self._sample("csv").replace(
            b"marc@maple-dental.example.com", b"marc@juniper-outfitters.example.com"
        )
        referral = self.Referral.browse(self._import(content)["ids"][0])
        self.assertEqual(referral.state, "to_review")
        self.assertFalse(referral.activity_ids)

    def test_unknown_sponsor_names_row_and_value(self):
        content = self._sample("csv").replace(b"buyer@quartz", b"nobody@quartz")
        self._assert_refused(
            content,
            [(2, 'No contact matches the sponsor "nobody@quartz-print.example.com"')],
        )

    def test_ambiguous_sponsor_name_refused(self):
        self._create_customer("JUNIPER outfitters")
        self._assert_refused(
            self._sample("csv"),
            [(1, 'Several contacts match the sponsor "Juniper Outfitters"')],
        )

    def test_missing_sponsor_refused(self):
        content = self._sample("csv").replace(SPONSOR_CODE.encode(), b"")
        self._assert_refused(content, [(3, "The sponsor is missing")])

    def test_missing_referee_refused(self):
        content = self._sample("csv").replace(
            b"Willow Bakery,,hello@willow-bakery.example.com", b",,"
        )
        self._assert_refused(
            content, [(2, "Give at least the name of the referred company")]
        )

    def test_referee_already_referred_refused(self):
        self._refer(referee_id=self.hazel.id)
        self._assert_refused(
            self._sample("csv"), [(3, "Hazel Architects has already been referred")]
        )

    def test_same_referee_twice_in_the_file_refused(self):
        """The second row of one new referee: refused as already referred
        (the rows are created together, the new contact is shared)."""
        content = self._sample("csv").replace(
            b"hello@willow-bakery.example.com", b"marc@maple-dental.example.com"
        )
        self._assert_refused(content, [(2, "Maple Dental has already been referred")])

    def test_self_referral_refused(self):
        content = self._sample("csv").replace(
            b"Hazel Architects,Hugo Hazel,studio@hazel-architects.example.com",
            b"Rowan Consulting,,contact@rowan-consulting.example.com",
        )
        self._assert_refused(content, [(3, "Rowan Consulting cannot refer itself")])

    def test_each_bad_row_named(self):
        """Two bad rows: two errors, each naming its own row (none put on
        the first row of the batch)."""
        content = (
            self._sample("csv")
            .replace(b"Juniper Outfitters", b"Nobody Ltd")
            .replace(SPONSOR_CODE.encode(), b"ZZZZ2222")
        )
        self._assert_refused(
            content,
            [
                (1, 'No contact matches the sponsor "Nobody Ltd"'),
                (3, 'No contact matches the sponsor "ZZZZ2222"'),
            ],
        )

    def test_xlsx_bad_row_refused(self):
        self._refer(referee_id=self.hazel.id)
        self._assert_refused(
            self._sample("xlsx"),
            [(3, "Hazel Architects has already been referred")],
            extension="xlsx",
        )

    def test_imported_in_the_current_company(self):
        """Imported in another company: referrals of that company and its
        program; a contact of the first company sponsors nothing there."""
        program = self.env["referral.program"]._get_company_program(self.other_company)
        self.assertTrue(program)
        program.sponsor_policy = "any"
        self.juniper.company_id = self.company
        self._assert_refused(
            self._sample("csv"),
            [(1, 'No contact matches the sponsor "Juniper Outfitters"')],
            company=self.other_company,
        )
        content = b"\n".join(
            line
            for line in self._sample("csv").split(b"\n")
            if b"Juniper Outfitters" not in line
        )
        result = self._import(content, user=self.salesman, company=self.other_company)
        self.assertFalse(result["messages"])
        self.assertRecordValues(
            self.Referral.browse(result["ids"]),
            [
                {
                    "company_id": self.other_company.id,
                    "program_id": program.id,
                    "sponsor_id": sponsor.id,
                    "source": "import",
                }
                for sponsor in (self.quartz, self.rowan)
            ],
        )

    def test_user_without_sales_rights_cannot_import(self):
        user = new_test_user(
            self.env,
            login="ref_employee",
            groups="base.group_user,base.group_partner_manager",
        )
        before = self._counts()
        result = self._import(self._sample("csv"), user=user)
        self.assertFalse(result["ids"])
        self.assertIn("Row 1: ", result["messages"][0]["message"])
        self.assertEqual(self._counts(), before)

    def test_sponsor_ref_resolves_in_three_queries(self):
        refs = [
            SPONSOR_CODE,
            "buyer@quartz-print.example.com",
            "Juniper Outfitters",
            "Quartz Print",
        ]
        self.env.invalidate_all()
        with self.assertQueryCount(3):
            sponsors = self.Referral._resolve_sponsor_refs(refs)
        self.assertEqual(
            [sponsors[ref] for ref in refs],
            [self.rowan, self.quartz, self.juniper, self.quartz],
        )

    def test_sponsor_ref_written_on_existing_referral(self):
        referral = self._refer()
        referral.sponsor_ref = "accounts@quartz-print.example.com"
        self.assertEqual(referral.sponsor_id, self.quartz)
        referral.invalidate_recordset(["sponsor_ref"])
        self.assertEqual(referral.sponsor_ref, self.quartz.referral_code)
        with self.assertRaisesRegex(ValidationError, "No contact matches"):
            referral.sponsor_ref = "Nobody Ltd"
        self.assertEqual(referral.sponsor_id, self.quartz)
