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
