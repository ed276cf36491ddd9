# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from unittest.mock import patch

from odoo.exceptions import AccessError, ValidationError
from odoo.tests import Form, tagged

from ..models import res_partner
from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralCodeCredentials(ReferralCommon):
    """A referral code is a credential: written only by the code generation
    and by Sales administrators (tracked in the chatter), and a code once
    published never goes to another contact."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.other = cls._create_customer("Other Customer")
        cls._confirm_order(cls.other)
        cls.Retired = cls.env["referral.retired.code"]

    def _assert_code_kept(self, partner, code):
        partner.invalidate_recordset(["referral_code"])
        self.assertEqual(partner.referral_code, code)

    def test_salesperson_cannot_write_a_code(self):
        """Giving a customer another customer's code would divert that
        customer's links: refused, as any other code."""
        mine, theirs = self.sponsor.referral_code, self.other.referral_code
        for code in (theirs, "MYVANITY", mine.lower() + "X"):
            with self.assertRefused(AccessError, "Only sales administrators"):
                self.sponsor.with_user(self.salesman).write({"referral_code": code})
            with self.assertRefused(AccessError, "Only sales administrators"):
                self.sponsor_contact.with_user(self.salesman_all).referral_code = code
        self._assert_code_kept(self.sponsor, mine)
        self.assertFalse(self.Retired.search_count([("code", "=", mine)]))

    def test_salesperson_cannot_create_a_contact_with_a_code(self):
        before = self.env["res.partner"].search_count([])
        with self.assertRefused(AccessError, "Only sales administrators"):
            self.env["res.partner"].with_user(self.salesman).create(
                {"name": "Code Thief", "referral_code": self.other.referral_code}
            )
        self.assertEqual(self.env["res.partner"].search_count([]), before)

    def test_salesperson_cannot_give_a_code_as_a_default(self):
        Partner = self.env["res.partner"].with_user(self.salesman)
        with self.assertRefused(AccessError, "Only sales administrators"):
            Partner.with_context(default_referral_code="CHOSEN99").create(
                {"name": "Default Code"}
            )
        self.assertFalse(
            self.env["res.partner"].search([("referral_code", "=", "CHOSEN99")])
        )

    def test_unchanged_code_saved_by_anybody(self):
        """A client (or the merge of contacts) saving the code it read."""
        code = self.sponsor.referral_code
        self.sponsor.with_user(self.salesman).write(
            {"referral_code": code, "phone": "+32 2 123 45 67"}
        )
        self.assertEqual(self.sponsor.phone, "+32 2 123 45 67")
        self._assert_code_kept(self.sponsor, code)
        # As typed (lower case, in groups): the same code, kept as made.
        self.sponsor.with_user(
            self.salesman
        ).referral_code = f"{code[:4].lower()} {code[4:].lower()}"
        self._assert_code_kept(self.sponsor, code)

    def test_manager_sets_a_code_tracked_and_the_old_one_retired(self):
        old = self.sponsor.referral_code
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.sponsor.with_user(self.sale_manager).referral_code = " sponsor 2026 "
        self.assertEqual(self.sponsor.referral_code, "SPONSOR2026")
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.sponsor.invalidate_recordset(["message_ids"])
        tracking = self.sponsor.message_ids.tracking_value_ids.filtered(
            lambda t: t.field_id.name == "referral_code"
        )
        self.assertRecordValues(
            tracking, [{"old_value_char": old, "new_value_char": "SPONSOR2026"}]
        )
        self.assertRecordValues(
            self.Retired.search([("partner_id", "=", self.sponsor.id)]),
            [{"code": old, "partner_id": self.sponsor.id}],
        )
        self.assertFalse(self.env["res.partner"]._portal_find_link_sponsor(old))
        self.assertEqual(
            self.env["res.partner"]._portal_find_link_sponsor("sponsor2026"),
            self.sponsor,
        )

    def test_contact_form_lets_managers_only_type_a_code(self):
        with Form(self.sponsor.with_user(self.salesman)) as form:
            with self.assertRaises(AssertionError):
                form.referral_code = "FORMCODE"
        old = self.sponsor.referral_code
        with Form(self.sponsor.with_user(self.sale_manager)) as form:
            form.referral_code = "form code"
        self.assertEqual(self.sponsor.referral_code, "FORMCODE")
        self.assertEqual(
            self.Retired.search([("partner_id", "=", self.sponsor.id)]).code, old
        )

    def test_manager_cannot_give_a_retired_code_to_another_contact(self):
        old = self.sponsor.referral_code
        self.sponsor.with_user(self.sale_manager).action_regenerate_referral_code()
        self.assertNotEqual(self.sponsor.referral_code, old)
        with self.assertRefused(ValidationError, "never given to another contact"):
            self.other.with_user(self.sale_manager).referral_code = old
        self._assert_code_kept(self.other, self.other.referral_code)
        with self.assertRefused(ValidationError, "never given to another contact"):
            self.env["res.partner"].with_user(self.sale_manager).create(
                {"name": "Newcomer", "referral_code": old.lower()}
            )
        # The code may go back to the contact that held it.
        self.sponsor.with_user(self.sale_manager).referral_code = old
        self.assertEqual(self.sponsor.referral_code, old)

    def test_manager_code_format(self):
        for code in ("AB", "AB-CD-EF", "A" * 65, "ÉCOLE", "nul\x00code", False):
            with (
                self.subTest(code=code),
                self.assertRefused(ValidationError, "letters and digits"),
            ):
                self.sponsor.with_user(self.sale_manager).referral_code = code

    def test_deleted_contact_code_stays_reserved(self):
        partner = self._create_customer("Short Lived")
        code = partner.referral_code
        partner.unlink()
        self.assertRecordValues(
            self.Retired.search([("code", "=", code)]),
            [{"code": code, "partner_id": False}],
        )
        with self.assertRefused(ValidationError, "never given to another contact"):
            self.other.with_user(self.sale_manager).referral_code = code

    def test_retire_method_for_merges(self):
        """What a merge of contacts calls for the contacts it absorbs: their
        codes retired at once, again without harm."""
        absorbed = self._create_customer("Absorbed") | self._create_customer("Also")
        codes = absorbed.mapped("referral_code")
        absorbed._retire_referral_codes()
        absorbed._retire_referral_codes()
        self.assertEqual(
            sorted(
                self.Retired.search([("partner_id", "in", absorbed.ids)]).mapped("code")
            ),
            sorted(codes),
        )

    def test_generated_code_never_a_retired_one(self):
        retired = self.sponsor.referral_code
        self.sponsor.with_user(self.sale_manager).action_regenerate_referral_code()
        self.env.flush_all()
        drawn = iter([retired, "FRESH234", retired, "FRESH567"])
        with patch.object(res_partner, "generate_referral_code", lambda: next(drawn)):
            newcomer = self.env["res.partner"].create({"name": "Newcomer"})
            self.assertEqual(newcomer.referral_code, "FRESH234")
            self.other.with_user(self.sale_manager).action_regenerate_referral_code()
            self.assertEqual(self.other.referral_code, "FRESH567")

    def test_regenerate_is_for_managers(self):
        old = self.sponsor.referral_code
        with self.assertRefused(AccessError, "Only sales administrators"):
            self.sponsor.with_user(self.salesman).action_regenerate_referral_code()
        self._assert_code_kept(self.sponsor, old)
        self.assertFalse(self.Retired.search_count([("code", "=", old)]))
