# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import csv
import unittest
from datetime import date
from pathlib import Path
from unittest.mock import patch

import openpyxl

from odoo.exceptions import ValidationError
from odoo.tests import TransactionCase, new_test_user, tagged

from .common import ReferralCommon

SAMPLES = Path(__file__).resolve().parent.parent / "data" / "samples"
TEMPLATE = (
    Path(__file__).resolve().parent.parent
    / "static"
    / "xls"
    / "referral_import_template.xlsx"
)
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
        # The sponsors of the samples are customers of the demo data, named
        # by name (Gemini Furniture), by a contact's email (Lorraine Douglas
        # of Lumber Inc) and by referral code (Joel Willis, KP7RM4TX).
        cls.gemini = cls.env.ref("base.res_partner_3", raise_if_not_found=False)
        if not cls.gemini:
            raise unittest.SkipTest("The samples name customers of the demo data.")
        cls.lumber = cls.env.ref("base.res_partner_18")
        cls.lumber_buyer = cls.env.ref("base.res_partner_address_30")
        cls.joel = cls.env.ref("base.partner_demo_portal")
        cls.gemini.user_id = cls.salesman
        cls.lumber.user_id = cls.salesman_2
        cls.joel.user_id = cls.salesman_all
        for sponsor in cls.gemini | cls.lumber | cls.joel:
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
            # Named once, counted from 1 after the header: the import dialog
            # shows "Error at row <record>: <message>".
            self.assertEqual(message["record"], row)
            self.assertEqual(message["rows"]["from"], row - 1)
            self.assertNotIn("Row ", message["message"])
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
                    "sponsor_id": self.gemini.id,
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
                    "sponsor_id": self.lumber.id,
                    "user_id": self.salesman_2.id,
                    "referee_company_name": "Willow Bakery",
                    "referee_contact_name": False,
                    "referee_email": "hello@willow-bakery.example.com",
                    "referee_phone": False,
                },
                {
                    "source": "import",
                    "state": "new",
                    "sponsor_id": self.joel.id,
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
        content = self._sample("csv").replace(b"Gemini Furniture", b"lorraine DOUGLAS")
        referrals = self.Referral.browse(self._import(content)["ids"])
        self.assertEqual(referrals[0].sponsor_id, self.lumber)

    def test_referee_held_for_review_like_by_hand(self):
        """Fraud checks apply: a referee sharing its sponsor's email domain
        waits for a review, without activities."""
        content = self._sample("csv").replace(
            b"marc@maple-dental.example.com", b"marc@fake.geminifurniture.com"
        )
        referral = self.Referral.browse(self._import(content)["ids"][0])
        self.assertEqual(referral.state, "to_review")
        self.assertFalse(referral.activity_ids)

    def test_unknown_sponsor_names_row_and_value(self):
        content = self._sample("csv").replace(b"lorraine.douglas35@", b"nobody@")
        self._assert_refused(
            content, [(2, 'No contact matches the sponsor "nobody@example.com"')]
        )

    def test_ambiguous_sponsor_name_refused(self):
        self._create_customer("GEMINI furniture")
        self._assert_refused(
            self._sample("csv"),
            [(1, 'Several contacts match the sponsor "Gemini Furniture"')],
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
            b",Joel Willis,joel.willis63@example.com",
        )
        self._assert_refused(content, [(3, "Joel Willis cannot refer itself")])

    def test_each_bad_row_named(self):
        """Two bad rows: two errors, each naming its own row (none put on
        the first row of the batch)."""
        content = (
            self._sample("csv")
            .replace(b"Gemini Furniture", b"Nobody Ltd")
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
        self.gemini.company_id = self.company
        self._assert_refused(
            self._sample("csv"),
            [(1, 'No contact matches the sponsor "Gemini Furniture"')],
            company=self.other_company,
        )
        content = b"\n".join(
            line
            for line in self._sample("csv").split(b"\n")
            if b"Gemini Furniture" not in line
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
                for sponsor in (self.lumber, self.joel)
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
        self.assertEqual(result["messages"][0]["record"], 1)
        self.assertEqual(self._counts(), before)

    def test_sponsor_ref_resolves_in_three_queries(self):
        refs = [
            SPONSOR_CODE,
            "lorraine.douglas35@example.com",
            "Gemini Furniture",
            "Lumber Inc",
        ]
        self.env.invalidate_all()
        with self.assertQueryCount(3):
            sponsors = self.Referral._resolve_sponsor_refs(refs)
        self.assertEqual(
            [sponsors[ref] for ref in refs],
            [self.joel, self.lumber, self.gemini, self.lumber],
        )

    def _queries(self, call):
        """SQL queries of ``call()``, caches emptied first."""
        self.env.invalidate_all()
        before = self.cr.sql_log_count
        call()
        return self.cr.sql_log_count - before

    def test_referees_of_a_file_found_in_one_query(self):
        """The referees of a whole file are looked up by email at once, each
        found as a lookup of its row alone finds it."""
        vals_list = [
            {"referee_email": "STUDIO@hazel-architects.example.com"},
            {"referee_email": "nobody@new-company.example.com"},
            {"referee_email": self.lumber_buyer.email},
            {"referee_company_name": "Someone new"},
            {"referee_email": "studio@hazel-architects.example.com"},
        ]
        expected = [self.Referral._find_referee(vals) for vals in vals_list]
        self.env.invalidate_all()
        with self.assertQueryCount(1):
            found = self.Referral._find_referees(vals_list)
        self.assertEqual(found, expected)
        self.assertEqual(
            [partner.id for partner in found],
            [self.hazel.id, False, self.lumber_buyer.id, False, self.hazel.id],
        )

    def test_referees_of_a_file_by_name_and_vat_found_in_one_query(self):
        """The referees named by company and Tax ID in a file are looked up
        at once (after the emails), each found as a lookup of its row alone
        finds it: case and spaces of the Tax ID ignored, a name that is not
        the company's found nowhere."""
        acme = self._create_customer("Acme Industries", vat="BE0477472701")
        beta = self._create_customer("Beta 100% Wood", vat="FR23334175221")
        vals_list = [
            {
                "referee_company_name": "ACME industries",
                "referee_vat": "be 0477 472 701",
            },
            {"referee_company_name": "Acme", "referee_vat": "BE0477472701"},
            {"referee_company_name": "beta 100% wood", "referee_vat": "FR23334175221"},
            {"referee_company_name": "Acme Industries", "referee_vat": "BE0000000000"},
            {"referee_company_name": "Acme Industries", "referee_vat": "BE0477472701"},
        ]
        expected = [self.Referral._find_referee(vals) for vals in vals_list]
        self.env.invalidate_all()
        with self.assertQueryCount(1):
            found = self.Referral._find_referees(vals_list)
        self.assertEqual(found, expected)
        self.assertEqual(
            [partner.id for partner in found],
            [acme.id, False, beta.id, False, acme.id],
        )

    def test_references_of_a_file_drawn_in_one_query(self):
        """A file's references: the sequence found and its numbers drawn
        in one query, in order, and the next reference follows them."""
        with self.assertQueryCount(1):
            names = self.Referral._next_references(self.env.company, 4)
        following = self.env["ir.sequence"].next_by_code("referral.referral")
        self.assertEqual(len(set(names + [following])), 5)
        self.assertEqual(sorted(names + [following]), names + [following])

    def test_file_checks_cost_the_same_for_one_row_or_many(self):
        """The sponsors' and referees' checks of a file are read once per
        company and program, not once per row."""
        referrals = self.Referral.create(
            [
                {
                    "sponsor_id": sponsor.id,
                    "referee_company_name": f"Newcomer {index}",
                }
                for index, sponsor in enumerate(
                    [self.gemini, self.lumber, self.joel, self.gemini]
                )
            ]
        )

        def check(records):
            return lambda: (
                records._check_referee_not_customer(),
                records._check_sponsor_eligible(),
            )

        self.assertEqual(
            self._queries(check(referrals[:1])), self._queries(check(referrals))
        )

    def test_sponsor_ref_written_on_existing_referral(self):
        referral = self._refer()
        referral.sponsor_ref = "lumber-inv92@example.com"
        self.assertEqual(referral.sponsor_id, self.lumber)
        referral.invalidate_recordset(["sponsor_ref"])
        self.assertEqual(referral.sponsor_ref, self.lumber.referral_code)
        with self.assertRaisesRegex(ValidationError, "No contact matches"):
            referral.sponsor_ref = "Nobody Ltd"
        self.assertEqual(referral.sponsor_id, self.lumber)

    def test_held_rows_listed_by_the_test_and_notified_by_the_import(self):
        """A row the fraud checks hold is no error: the dialog's Test lists
        it as a warning (row and reason); the import, which closes the
        dialog, says it in a notification that stays."""
        content = self._sample("csv").replace(
            b"marc@maple-dental.example.com", b"marc@fake.geminifurniture.com"
        )
        result = self._import(content, user=self.salesman, dryrun=True)
        self.assertEqual(len(result["messages"]), 1)
        warning = result["messages"][0]
        self.assertEqual(warning["type"], "warning")
        # No row key: the dialog shows it as a warning, not a row's error.
        self.assertNotIn("record", warning)
        self.assertIn(
            "1 referral(s) wait for a Sales administrator's review", warning["message"]
        )
        self.assertIn(
            "row 1: The referee's email domain is the sponsor's.", warning["message"]
        )
        Users = self.registry["res.users"]
        with patch.object(Users, "_bus_send", autospec=True) as bus_send:
            result = self._import(content, user=self.salesman)
        self.assertFalse(result["messages"])
        self.assertEqual(
            self.Referral.browse(result["ids"]).mapped("state"),
            ["to_review", "new", "new"],
        )
        bus_send.assert_called_once()
        user, kind, payload = bus_send.call_args.args
        self.assertEqual((user, kind), (self.salesman, "simple_notification"))
        self.assertRecordValues(user, [{"id": self.salesman.id}])
        self.assertTrue(payload["sticky"])
        self.assertIn("row 1: The referee's email domain", payload["message"])

    def test_no_notification_when_nothing_is_held(self):
        Users = self.registry["res.users"]
        with patch.object(Users, "_bus_send", autospec=True) as bus_send:
            result = self._import(self._sample("csv"), user=self.salesman)
        self.assertEqual(len(result["ids"]), 3)
        bus_send.assert_not_called()

    def test_imported_rows_are_no_burst_of_their_sponsor(self):
        """Ten rows of one sponsor beyond the program's hourly threshold: an
        import is staff's work, not the sponsor sending referrals."""
        self.program.fraud_burst_limit = 2
        lines = [self._sample("csv").split(b"\n")[0]] + [
            f"Gemini Furniture,Burst {index},,burst{index}@burst{index}.example.com,,,"
            "2026-03-02".encode()
            for index in range(10)
        ]
        result = self._import(b"\n".join(lines), user=self.salesman)
        self.assertFalse(result["messages"])
        self.assertEqual(
            set(self.Referral.browse(result["ids"]).mapped("state")), {"new"}
        )


@tagged("post_install", "-at_install")
class TestReferralSamplesOnDemo(TransactionCase):
    """The samples and the import template, as shipped, on the demo data:
    Marc Demo, a salesperson, imports them without touching anything."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        if not cls.env.ref("base.user_demo", raise_if_not_found=False):
            raise unittest.SkipTest("The samples name customers of the demo data.")
        cls.marc = cls.env.ref("base.user_demo")

    def _import(self, content, extension, dryrun=False):
        wizard = (
            self.env["base_import.import"]
            .with_user(self.marc)
            .create(
                {
                    "res_model": "referral.referral",
                    "file": content,
                    "file_name": f"referrals.{extension}",
                    "file_type": MIMETYPES[extension],
                }
            )
        )
        preview = wizard.parse_preview(
            {
                "has_headers": True,
                "quoting": '"',
                "separator": ",",
                "date_format": "%Y-%m-%d",
            }
        )
        fields = [
            "/".join(preview["matches"][index])
            if index in preview["matches"]
            else False
            for index in range(len(preview["headers"]))
        ]
        self.assertEqual(fields, REFERRAL_FIELDS)
        return wizard.execute_import(
            fields, preview["headers"], preview["options"], dryrun=dryrun
        )

    def _check_imported_as_shipped(self, path):
        extension = path.suffix[1:]
        dry = self._import(path.read_bytes(), extension, dryrun=True)
        self.assertFalse(dry["messages"])
        result = self._import(path.read_bytes(), extension)
        self.assertFalse(result["messages"])
        referrals = self.env["referral.referral"].browse(result["ids"])
        self.assertRecordValues(
            referrals,
            [
                {
                    "sponsor_id": self.env.ref(xmlid).id,
                    "referee_company_name": referee,
                    "source": "import",
                    "state": "new",
                }
                for xmlid, referee in (
                    ("base.res_partner_3", "Maple Dental"),
                    ("base.res_partner_18", "Willow Bakery"),
                    ("base.partner_demo_portal", "Hazel Architects"),
                )
            ],
        )
        # Routed and planned: two calls each.
        self.assertEqual(len(referrals.activity_ids), 6)

    def test_csv_sample_imports_as_shipped(self):
        self._check_imported_as_shipped(SAMPLES / "referrals.csv")

    def test_xlsx_sample_imports_as_shipped(self):
        self._check_imported_as_shipped(SAMPLES / "referrals.xlsx")

    def test_template_imports_as_shipped(self):
        self._check_imported_as_shipped(TEMPLATE)

    def test_import_offers_the_template(self):
        """The referrals' import dialog offers a template, as the contacts'
        does; it holds the rows of the samples."""
        templates = self.env["referral.referral"].get_import_templates()
        self.assertEqual(
            [template["template"] for template in templates],
            ["/sale_referral_lifecycle/static/xls/referral_import_template.xlsx"],
        )
        self.assertEqual(templates[0]["label"], "Import Template for Referrals")
        self.assertTrue(TEMPLATE.is_file())

        def rows(path):
            sheet = openpyxl.load_workbook(path, read_only=True).active
            return [
                [
                    value.date().isoformat() if hasattr(value, "date") else value or ""
                    for value in row
                ]
                for row in sheet.iter_rows(values_only=True)
            ]

        with open(SAMPLES / "referrals.csv", encoding="utf-8") as sample:
            csv_rows = list(csv.reader(sample))
        self.assertEqual(rows(TEMPLATE), csv_rows)
        self.assertEqual(rows(SAMPLES / "referrals.xlsx"), csv_rows)
