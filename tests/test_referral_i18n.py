# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from pathlib import Path

import polib

from odoo.tests import TransactionCase, tagged
from odoo.tools.translate import TranslationModuleReader

I18N = Path(__file__).resolve().parent.parent / "i18n"
MODULE = "sale_referral_lifecycle"


@tagged("post_install", "-at_install")
class TestI18n(TransactionCase):
    def test_code_terms_extracted_and_in_the_translations(self):
        """Every translatable string of the code is extracted (an expression
        the extractor cannot read, such as an f-string argument, drops the
        whole file with an error) and is in the template and the French
        translation: the export was run again after the strings changed."""
        with self.assertNoLogs("odoo.tools.translate", "ERROR"):
            reader = TranslationModuleReader(self.env.cr, modules=[MODULE])
            code_terms = {
                source
                for module, ttype, name, _res_id, source, *_rest in reader
                # Not the hidden folders of a checkout (the lint tools' venv).
                if module == MODULE and ttype == "code" and "/." not in name
            }
        self.assertIn("Welcome discount (%(percent)s%%)", code_terms)
        for filename in (f"{MODULE}.pot", "fr.po"):
            msgids = {entry.msgid for entry in polib.pofile(str(I18N / filename))}
            self.assertFalse(
                sorted(code_terms - msgids),
                f"strings missing from i18n/{filename}: export the translations "
                "again (see README)",
            )


@tagged("post_install", "-at_install")
class TestI18nRecordNames(TransactionCase):
    """The names of the addon's own records a French salesperson reads: the
    plan "New referral" and the UTM source "Referral"."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("fr_FR")
        cls.env["ir.module.module"]._load_module_terms(
            [MODULE], ["fr_FR"], overwrite=True
        )
        cls.fr_env = cls.env(context=dict(cls.env.context, lang="fr_FR"))
        cls.plan = cls.env.ref(f"{MODULE}.mail_activity_plan_referral")
        cls.source = cls.env.ref(f"{MODULE}.utm_source_referral")

    def test_plan_name_in_the_user_language(self):
        self.assertEqual(self.plan.name, "New referral")
        self.assertEqual(self.plan.with_env(self.fr_env).name, "Nouveau parrainage")
        Plan = self.fr_env["mail.activity.plan"]
        self.assertEqual(Plan.search([("name", "=", "Nouveau parrainage")]), self.plan)
        # A plan created by a user keeps its name in every language.
        mine = Plan.create({"name": "Mon plan", "res_model": "res.partner"})
        self.assertEqual(mine.with_context(lang="en_US").name, "Mon plan")

    def test_referral_source_shown_in_the_user_language(self):
        source_fr = self.source.with_env(self.fr_env)
        self.assertEqual(source_fr.display_name, "Parrainage")
        self.assertEqual(self.source.display_name, "Referral")
        # The stored name is the UTM identifier, the same in every language.
        self.assertEqual(source_fr.name, "Referral")
        found = self.fr_env["utm.source"].name_search("Parrain")
        self.assertIn(self.source.id, [source_id for source_id, _name in found])
        self.assertEqual(dict(found)[self.source.id], "Parrainage")
        self.assertIn(
            self.source.id,
            [row[0] for row in self.env["utm.source"].name_search("Referr")],
        )
        self.assertNotIn(
            self.source.id,
            [row[0] for row in self.fr_env["utm.source"].name_search("Xyz")],
        )

    def test_renamed_referral_source_keeps_its_name(self):
        self.source.name = "Bouche à oreille"
        self.assertEqual(
            self.source.with_env(self.fr_env).display_name, "Bouche à oreille"
        )
