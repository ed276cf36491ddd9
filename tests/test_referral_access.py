# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.exceptions import AccessError
from odoo.tests import Form, new_test_user, tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralAccess(ReferralCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.mine = cls.Referral.create(
            {"sponsor_id": cls.sponsor.id, "referee_company_name": "Mine Ltd"}
        )
        other_sponsor = cls._create_customer("Sam's Sponsor", user_id=cls.salesman_2.id)
        cls._confirm_order(other_sponsor)
        cls.theirs = cls.Referral.create(
            {"sponsor_id": other_sponsor.id, "referee_company_name": "Theirs Ltd"}
        )
        foreign_sponsor = cls._create_customer(
            "Foreign Sponsor", user_id=cls.salesman.id
        )
        cls._confirm_order(foreign_sponsor, company_id=cls.other_company.id)
        cls.foreign = cls.Referral.create(
            {
                "sponsor_id": foreign_sponsor.id,
                "referee_company_name": "Foreign Prospect",
                "company_id": cls.other_company.id,
            }
        )

    def test_own_documents_salesperson_sees_own_referrals(self):
        visible = self.Referral.with_user(self.salesman).search([])
        self.assertIn(self.mine, visible)
        self.assertNotIn(self.theirs, visible)
        with self.assertRaises(AccessError):
            self.theirs.with_user(self.salesman).read(["name"])

    def test_own_documents_salesperson_records_referral_for_colleague(self):
        referral = self.Referral.with_user(self.salesman).create(
            {"sponsor_id": self.theirs.sponsor_id.id, "referee_company_name": "Tip Ltd"}
        )
        self.assertEqual(referral.sudo().user_id, self.salesman_2)
        self.assertEqual(len(referral.sudo().activity_ids), 2)

    def test_all_documents_salesperson_sees_all_referrals_of_company(self):
        visible = self.Referral.with_user(self.salesman_all).search([])
        self.assertIn(self.mine, visible)
        self.assertIn(self.theirs, visible)
        self.assertNotIn(self.foreign, visible)

    def test_other_company_referral_invisible(self):
        visible = (
            self.Referral.with_user(self.salesman)
            .with_context(allowed_company_ids=self.company.ids)
            .search([])
        )
        self.assertNotIn(self.foreign, visible)
        visible = (
            self.Referral.with_user(self.salesman)
            .with_context(allowed_company_ids=(self.company | self.other_company).ids)
            .search([])
        )
        self.assertIn(self.foreign, visible)

    def test_salesperson_cannot_delete_referral(self):
        with self.assertRaises(AccessError):
            self.mine.with_user(self.salesman).unlink()
        self.assertTrue(self.mine.exists())
        self.mine.with_user(self.sale_manager).unlink()
        self.assertFalse(self.mine.exists())

    def test_salesperson_cannot_edit_program(self):
        with self.assertRaises(AccessError):
            self.program.with_user(self.salesman_all).write({"name": "Hacked"})
        self.assertEqual(self.program.name, "Customer referrals")
        self.program.with_user(self.sale_manager).write({"name": "Partners refer"})
        self.assertEqual(self.program.name, "Partners refer")

    def test_salesperson_confirms_order_of_colleague_referral(self):
        referee = self.theirs.referee_id
        order = self._create_order(referee, user_id=self.salesman.id)
        order.with_user(self.salesman).action_confirm()
        self.assertEqual(self.theirs.state, "won")
        self.assertEqual(order.referral_id, self.theirs)
        # The reward: the lifecycle queue's job, whoever confirmed.
        self._process_lifecycle_queue()
        self.assertEqual(self.theirs.state, "rewarded")

    def test_salesperson_without_sales_rights_sees_no_referral(self):
        user = self.env["res.users"].create(
            {
                "name": "Plain User",
                "login": "ref_plain",
                "groups_id": [(6, 0, [self.env.ref("base.group_user").id])],
            }
        )
        with self.assertRaises(AccessError):
            self.Referral.with_user(user).search([])

    def test_portal_user_sees_only_its_company_referrals(self):
        portal = new_test_user(
            self.env,
            login="ref_portal",
            groups="base.group_portal",
            partner_id=self.sponsor_contact.id,
        )
        visible = self.Referral.with_user(portal).search([])
        self.assertEqual(visible, self.mine)
        with self.assertRaises(AccessError):
            self.theirs.with_user(portal).read(["name"])
        with self.assertRaises(AccessError):
            self.mine.with_user(portal).write({"note": "Changed"})

    def test_own_documents_salesperson_saves_referral_form_for_colleague(self):
        with Form(self.Referral.with_user(self.salesman)) as form:
            form.sponsor_id = self.theirs.sponsor_id
            form.referee_company_name = "Form Prospect"
        referral = form.record
        self.assertEqual(referral.user_id, self.salesman_2)
        self.assertEqual(referral.referee_id.name, "Form Prospect")

    def test_portal_sponsor_cannot_read_internal_fields(self):
        portal = new_test_user(
            self.env,
            login="ref_portal_2",
            groups="base.group_portal",
            partner_id=self.sponsor_contact.id,
        )
        with self.assertRaises(AccessError):
            self.mine.with_user(portal).read(["note"])
        with self.assertRaises(AccessError):
            self.mine.with_user(portal).read(["first_order_amount"])
        self.assertEqual(
            self.mine.with_user(portal).read(["name"])[0]["name"], self.mine.name
        )
