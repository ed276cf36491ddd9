# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date
from unittest.mock import patch

from odoo.tests import tagged
from odoo.tools import safe_eval

from odoo.addons.base.models.ir_qweb import IrQWeb

from ..models.followup import partner_followup_engine as engine_module
from .followup_common import FollowupCommon

# What differs between two sendings of one email by construction.
PER_SENDING = {"id", "message_id", "references", "create_date", "write_date", "date"}
MAIL_FIELDS = (
    "body_html",
    "subject",
    "email_from",
    "email_to",
    "email_cc",
    "recipient_ids",
    "reply_to",
    "model",
    "res_id",
    "auto_delete",
    "is_notification",
    "state",
    "scheduled_date",
    "mail_server_id",
    "attachment_ids",
    "headers",
)
MESSAGE_FIELDS = (
    "body",
    "subject",
    "email_from",
    "reply_to",
    "author_id",
    "partner_ids",
    "model",
    "res_id",
    "message_type",
    "subtype_id",
    "is_internal",
    "record_name",
    "record_company_id",
    "record_alias_domain_id",
    "email_add_signature",
    "email_layout_xmlid",
    "parent_id",
)


@tagged("post_install", "-at_install")
class TestFollowupEmails(FollowupCommon):
    """The follow-up engine sends a template with its body compiled once per
    language (see ``models/mail_render_mixin.py``): the emails must be those
    Odoo's mass-mail composer produces."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.env["res.lang"]._activate_lang("fr_FR")
        cls.template = cls.env.ref(
            "sale_referral_lifecycle.mail_template_followup_renewal_proposal"
        )
        cls.salesman.signature = "<p>-- Sally, <b>sales</b> &amp; co</p>"
        cls.partners = cls.env["res.partner"]
        for index, (lang, user) in enumerate(
            (
                ("en_US", cls.salesman),
                ("fr_FR", cls.salesman),
                ("en_US", cls.env["res.users"]),
                ("fr_FR", cls.env["res.users"]),
                ("fr_FR", cls.salesman),
            )
        ):
            partner = cls._create_customer(
                f"Client <{index}> & fils",
                lang=lang,
                user_id=user.id,
                email=f"client{index}@example.com",
            )
            partner.subscription_end_date = date(2027, 1, 10 + index)
            cls.partners |= partner

    def _send(self, composer_way):
        """The emails of the template to the partners, through the engine's
        sending or the composer as Odoo's mass mailing uses it."""
        before = self.env["mail.mail"].search([]).ids
        if composer_way:
            self.env["mail.compose.message"].with_context(active_test=False).create(
                {
                    "composition_mode": "mass_mail",
                    "model": "res.partner",
                    "res_ids": str(sorted(self.partners.ids)),
                    "template_id": self.template.id,
                    "force_send": False,
                }
            )._action_send_mail()
        else:
            self.Engine._send_template(self.template, self.partners.ids)
        mails = self.env["mail.mail"].search([("id", "not in", before)])
        self.assertEqual(sorted(mails.mapped("res_id")), sorted(self.partners.ids))
        return {
            mail.res_id: (
                self._values(mail, MAIL_FIELDS),
                self._values(mail.mail_message_id, MESSAGE_FIELDS),
            )
            for mail in mails
        }

    def _values(self, record, fields):
        values = record.read(list(fields))[0]
        return {key: value for key, value in values.items() if key not in PER_SENDING}

    def test_engine_emails_are_the_composer_emails(self):
        compile_calls = []
        compile_qweb = IrQWeb._compile

        def spy(qweb, template):
            compile_calls.append(template)
            return compile_qweb(qweb, template)

        checked = []
        test_expr = safe_eval.test_expr

        def spy_expr(expr, *args, **kwargs):
            checked.append(expr)
            return test_expr(expr, *args, **kwargs)

        with (
            patch.object(IrQWeb, "_compile", autospec=True, side_effect=spy),
            patch.object(safe_eval, "test_expr", side_effect=spy_expr),
        ):
            by_engine = self._send(composer_way=False)
            compiled_by_engine = len(compile_calls)
            checked_by_engine = len(checked)
            by_composer = self._send(composer_way=True)
        # One body per language (two), against one per recipient.
        self.assertEqual(compiled_by_engine, 2)
        self.assertEqual(len(compile_calls) - compiled_by_engine, 5)
        # The inline fields' expressions: each checked and compiled once per
        # rendering (the first recipient's through Odoo's own loop), not once
        # per recipient.
        self.assertEqual(checked_by_engine, 22)
        self.assertEqual(len(checked) - checked_by_engine, 40)
        self.assertEqual(by_engine, by_composer)
        # What the emails say, in each recipient's language.
        english, french = self.partners[0], self.partners[1]
        self.assertIn(
            "Client &lt;0&gt; &amp; fils", by_engine[english.id][0]["body_html"]
        )
        self.assertIn("01/10/2027", by_engine[english.id][0]["body_html"])
        self.assertIn("11/01/2027", by_engine[french.id][0]["body_html"])
        self.assertIn("<b>sales</b> &amp; co", by_engine[french.id][0]["body_html"])
        self.assertNotIn("Sally", by_engine[self.partners[2].id][0]["body_html"])

    def test_engine_batches_are_the_composer_emails(self):
        """The engine's composer batches (``composer_batch_size``): emails
        split over several batches are those of one batch of Odoo's
        composer."""
        Composer = self.registry["mail.compose.message"]
        prepare = Composer._prepare_mail_values
        batches = []

        def spy(composer, res_ids):
            batches.append(list(res_ids))
            return prepare(composer, res_ids)

        with patch.object(
            Composer, "_prepare_mail_values", autospec=True, side_effect=spy
        ):
            with patch.object(engine_module, "EMAIL_BATCH_SIZE", 2):
                by_engine = self._send(composer_way=False)
            engine_batches = len(batches)
            by_composer = self._send(composer_way=True)
        self.assertEqual(engine_batches, 3)
        self.assertEqual(len(batches) - engine_batches, 1)
        self.assertEqual(by_engine, by_composer)
