# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import Form, tagged

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestSaleOrderReferralCode(ReferralCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.newcomer = cls._create_customer("Newcomer Ltd")
        cls.referral_source = cls.env.ref("sale_referral_lifecycle.utm_source_referral")

    def test_typed_code_stored_as_codes_are_made_with_the_sponsor_shown(self):
        code = self.sponsor.referral_code
        typed = f"  {code[:4].lower()} {code[4:]} "
        order_form = Form(self.env["sale.order"].with_user(self.salesman))
        order_form.partner_id = self.newcomer
        order_form.referral_code = typed
        # Shown before the order is saved or confirmed.
        self.assertEqual(order_form.referral_code_sponsor_id, self.sponsor)
        with order_form.order_line.new() as line:
            line.product_id = self.product
        order = order_form.save()
        self.assertEqual(order.referral_code, code)
        order.referral_code = code.lower()
        self.assertEqual(order.referral_code, code)
        order.action_confirm()
        self.assertEqual(order.referral_id.sponsor_id, self.sponsor)

    def test_referee_from_a_code_gets_the_referral_as_first_contact_channel(self):
        order = self._create_order(
            self.newcomer, referral_code=self.sponsor.referral_code
        )
        order.action_quotation_sent()  # dates the first contact, no channel
        self.assertTrue(self.newcomer.first_contact_date)
        self.assertFalse(self.newcomer.first_contact_source_id)
        order.action_confirm()
        self.assertEqual(self.newcomer.first_contact_source_id, self.referral_source)

    def test_imported_referrals_have_the_import_source(self):
        result = self.Referral.with_context(import_file=True).load(
            ["sponsor_id", "referee_company_name"],
            [[self.sponsor.name, "Imported Prospect Ltd"]],
        )
        self.assertFalse(result["messages"])
        referral = self.Referral.browse(result["ids"])
        self.assertEqual(referral.source, "import")
        self.assertEqual(
            self._refer(referee_company_name="Typed Ltd").source, "backend"
        )
