# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import html
from datetime import date
from unittest.mock import patch

from lxml import etree

from odoo import Command
from odoo.tests import HttpCase, new_test_user, tagged

from .common import WalletCommon

MODULE = "sale_referral_lifecycle"


def load_french(env):
    env["res.lang"]._activate_lang("fr_FR")
    env["ir.module.module"]._load_module_terms([MODULE], ["fr_FR"], overwrite=True)


@tagged("post_install", "-at_install")
class TestFrenchScreens(HttpCase):
    """The screens this addon adds or changed, rendered in fr_FR: French
    labels, and none of the English texts they carry."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_french(cls.env)
        cls.program = cls.env.ref(f"{MODULE}.referral_program_default")
        cls.program.write({"sponsor_policy": "any", "portal_enabled": True})
        cls.fr = cls.env(context=dict(cls.env.context, lang="fr_FR"))
        cls.sponsor = cls.env["res.partner"].create(
            {"name": "Parrain SARL", "is_company": True, "lang": "fr_FR"}
        )
        cls.portal_user = new_test_user(
            cls.env,
            login="fr_portal",
            password="fr_portal",
            name="Pierre Portail",
            groups="base.group_portal",
            lang="fr_FR",
        )
        cls.portal_user.partner_id.parent_id = cls.sponsor
        wallet = cls.env["referral.wallet"]._get_or_create(cls.sponsor, cls.env.company)
        referral = cls.env["referral.referral"].create(
            {"sponsor_id": cls.sponsor.id, "referee_company_name": "Filleul SAS"}
        )
        wallet._credit(
            80.0, referral_id=referral.id, name="Reward for referring Filleul SAS"
        )

    def _arch(self, model, view_type="form", view=None):
        views = self.fr[model].get_views([(view and self.env.ref(view).id, view_type)])
        return views["views"][view_type]["arch"]

    def assertFrench(self, text, french, english):
        text = html.unescape(text)
        for term in french:
            self.assertIn(term, text)
        for term in english:
            self.assertNotIn(term, text)

    def test_referral_form_and_order_form(self):
        self.assertFrench(
            self._arch("referral.referral"),
            ["Nouveau devis", "Devis"],
            ["New Quotation"],
        )
        self.assertNotIn("Code of", self._arch("sale.order"))
        fields = self.fr["sale.order"].fields_get(
            ["referral_code_sponsor_id", "referral_credit_amount"], ["string"]
        )
        self.assertEqual(
            {name: field["string"] for name, field in fields.items()},
            {
                "referral_code_sponsor_id": "Parrainé par",
                "referral_credit_amount": "Crédit de parrainage appliqué (TTC)",
            },
        )
        fields = self.fr["account.move"].fields_get(
            ["referral_credit_amount", "referral_credit_available"], ["string"]
        )
        self.assertEqual(
            [field["string"] for field in fields.values()],
            ["Crédit de parrainage appliqué (TTC)", "Crédit de parrainage utilisable"],
        )

    def test_invoice_form(self):
        self.assertFrench(
            self._arch("account.move"),
            [
                "Le client peut dépenser",
                "de crédit de parrainage sur cette facture.",
                "Crédit de parrainage rendu (TTC)",
            ],
            ["The customer can spend", "Given Back", "Referral Credit Applied"],
        )

    def test_dashboard_settings_and_menus(self):
        dashboard = self._arch(
            "referral.program",
            "kanban",
            f"{MODULE}.view_referral_program_dashboard_kanban",
        )
        self.assertFrench(
            dashboard,
            [
                "Part des nouveaux clients apportée par un parrainage",
                "Du premier contact à la première commande",
                "Crédit dû aux parrains",
                "Meilleurs parrains",
                "jours",
            ],
            ["Share of new customers", "From first contact", "Top sponsors", ">days<"],
        )
        settings = self._arch("res.config.settings")
        block = etree.fromstring(settings).xpath(
            "//block[@name='referral_setting_container']"
        )[0]
        self.assertEqual(block.get("title"), "Parrainages")
        self.assertIn("Écart entre relances", etree.tostring(block, encoding="unicode"))
        menu = self.env.ref(f"{MODULE}.menu_referral_analysis").with_context(
            lang="fr_FR"
        )
        self.assertEqual(menu.name, "Rapports")
        self.assertEqual(
            self.fr["referral.referral"].get_import_templates()[0]["label"],
            "Modèle d'import pour les parrainages",
        )

    def test_chart_dimension_in_french(self):
        selection = dict(
            self.fr["referral.prospect.kpi"]
            ._fields["acquisition_channel"]
            ._description_selection(self.fr)
        )
        self.assertEqual(
            selection, {"referral": "Parrainage", "other": "Autres canaux"}
        )
        groups = self.fr["referral.program.kpi"].read_group(
            [], ["customer_count:sum"], ["acquisition_channel"]
        )
        labels = {group["acquisition_channel"] for group in groups}
        self.assertNotIn(False, labels)
        self.assertNotIn(True, labels)

    def test_portal_wallet_and_statement_in_french(self):
        self.authenticate("fr_portal", "fr_portal")
        wallet = self.url_open("/my/wallet?statement_error=period").text
        self.assertFrench(
            wallet,
            [
                "Récompense pour le parrainage de Filleul SAS",
                "La période doit commencer avant de finir.",
            ],
            ["Reward for referring", "The period must start"],
        )
        for error, french in (
            ("dates", "Les dates de la période sont illisibles"),
            ("failed", "Le relevé n'a pas pu être créé"),
        ):
            self.assertIn(
                french, self.url_open(f"/my/wallet?statement_error={error}").text
            )
        Report = self.registry["ir.actions.report"]
        with patch.object(Report, "get_wkhtmltopdf_state", return_value="install"):
            page = self.url_open("/my/wallet/statement").text
        self.assertFrench(
            page,
            ["Aucun moteur PDF (wkhtmltopdf)", "Imprimer", "Retour à votre crédit"],
            ["No PDF engine", "Back to your credit", "Reward for referring"],
        )

    def test_public_link_in_french(self):
        self.url_open("/web/webclient/version_info", data="{}")  # a session
        self.opener.cookies["frontend_lang"] = "fr_FR"
        page = self.url_open(f"/r/{self.sponsor.referral_code}").text
        self.assertFrench(
            page,
            [
                "Votre nom",
                "Votre e-mail",
                "J'accepte d'être contacté au sujet de cette recommandation",
                "Envoyer mes coordonnées",
            ],
            ["my contact's agreement", "Your name", "Contact name", "Send my details"],
        )


@tagged("post_install", "-at_install")
class TestFrenchMovements(WalletCommon):
    """Credit movements and tracked changes read in the reader's language,
    whoever recorded them and in whatever language."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        load_french(cls.env)
        cls.program.redeem_scope = "any"

    def _fr(self, records):
        return records.with_context(lang="fr_FR")

    def test_reward_spending_and_refund_described_in_french(self):
        referral, _order = self._reward_referral("Filleul SAS")
        reward = referral.transaction_ids
        self.assertEqual(
            reward.name, f"Reward for referring Filleul SAS ({referral.name})"
        )
        self.assertEqual(
            self._fr(reward).description,
            f"Récompense pour le parrainage de Filleul SAS ({referral.name})",
        )
        self.assertEqual(self._fr(reward).display_name, self._fr(reward).description)
        order = self._create_order(self.sponsor)
        order.action_apply_referral_credit()
        order.action_confirm()
        debit = order.order_line.filtered("referral_credit_wallet_id")
        spent = self.Transaction.search([("sale_order_id", "=", order.id)])
        self.assertTrue(debit)
        self.assertEqual(
            self._fr(spent).description, f"Crédit dépensé sur {order.name}"
        )
        order._action_cancel()
        released = self.Transaction.search(
            [("sale_order_id", "=", order.id), ("transaction_type", "=", "reversal")]
        )
        self.assertEqual(
            self._fr(released).description, f"Crédit libéré par {order.name}"
        )

    def test_credit_note_gives_back_in_french(self):
        wallet = self._wallet()
        wallet._credit(50.0, name="Own credit")
        invoice = self.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self.sponsor.id,
                "invoice_date": date(2026, 5, 4),
                "invoice_line_ids": [
                    Command.create({"product_id": self.product.id, "tax_ids": []})
                ],
            }
        )
        invoice._apply_referral_credit(wallet, 50.0)
        invoice.action_post()
        refund = invoice._reverse_moves()
        refund.action_post()
        given_back = self.Transaction.search([("invoice_id", "=", refund.id)])
        self.assertEqual(
            self._fr(given_back).description, f"Crédit rendu par {refund.name}"
        )

    def test_adjustment_keeps_the_reason_typed(self):
        wizard = (
            self.env["referral.wallet.adjust.wizard"]
            .with_user(self.approver)
            .create(
                {
                    "wallet_id": self._wallet().id,
                    "direction": "in",
                    "amount": 25.0,
                    "reason": "Geste commercial après la panne\nDeuxième ligne",
                }
            )
        )
        wizard.action_apply()
        adjustment = self._wallet().transaction_ids.filtered(
            lambda t: t.transaction_type == "adjustment"
        )
        self.assertEqual(
            self._fr(adjustment).description,
            "Ajustement : Geste commercial après la panne",
        )
        self.assertEqual(
            adjustment.with_context(lang="en_US").description,
            "Adjustment: Geste commercial après la panne",
        )

    def test_reversal_and_expiry_described_from_what_they_undo(self):
        referral, _order = self._reward_referral("Expiré SA")
        reward = referral.transaction_ids
        reversal = reward._reverse(amount=10.0)
        self.assertEqual(
            self._fr(reversal).description,
            f"Extourne de Récompense pour le parrainage de Expiré SA ({referral.name})",
        )
        expired = reward._expire()
        self.assertTrue(
            self._fr(expired).description.startswith("Expiration de Récompense")
        )

    def test_status_tracked_by_the_job_reads_in_french(self):
        """The job (English) moved the referral: a French reader sees
        "Nouveau → En cours (Statut)" as Odoo shows its own tracking."""
        referral = self._refer()
        referral.with_context(lang="en_US").action_start()
        self.env.flush_all()
        self.env.cr.precommit.run()
        referral.invalidate_recordset(["message_ids"])
        tracking = referral.message_ids.tracking_value_ids.filtered(
            lambda t: t.field_id.name == "state"
        )
        self.assertEqual(
            (tracking.old_value_char, tracking.new_value_char), ("New", "In Progress")
        )
        formatted = self._fr(tracking)._tracking_value_format()
        self.assertEqual(
            [
                (f["changedField"], f["oldValue"]["value"], f["newValue"]["value"])
                for f in formatted
            ],
            [("Statut", "Nouveau", "En cours")],
        )
        # Odoo's own models keep Odoo's behaviour (the label as tracked).
        order = self._create_order(self.sponsor)
        message = order.message_post(body="Tracked")
        field = self.env["ir.model.fields"]._get("sale.order", "state")
        order_tracking = self.env["mail.tracking.value"].create(
            {
                "mail_message_id": message.id,
                "field_id": field.id,
                "old_value_char": "Quotation",
                "new_value_char": "Sales Order",
            }
        )
        self.assertEqual(
            self._fr(order_tracking)._tracking_value_format()[0]["newValue"]["value"],
            "Sales Order",
        )
