# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import email_normalize, plaintext2html

from .referral_referral import ACTIVE_STATES

# Fields of the portal and referral-link forms, in the form's order.
PORTAL_FORM_FIELDS = (
    "company_name",
    "contact_name",
    "email",
    "phone",
    "message",
)


class ReferralReferral(models.Model):
    """Referrals sent by customers from their portal or by visitors of a
    public referral link: validation in the customer's words, daily limits,
    creation routed as in the back office."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited
    # Portal users read their company's referrals and add notes to them.
    _mail_post_access = "read"

    @api.model
    def _portal_get_program(self, company):
        """The program of ``company`` when it takes referrals from the portal."""
        program = self.env["referral.program"].sudo()._get_company_program(company)
        return program if program.portal_enabled else program.browse()

    @api.model
    def _portal_create_referral(self, sponsor, form, source, ip_address):
        """Create the referral ``form`` describes for ``sponsor`` (a
        commercial entity), as superuser: the customer has no right on
        referrals but this one. Return ``(referral, errors)``: errors maps a
        form field (or ``"form"``) to a message for the customer, and nothing
        is written when there is one."""
        company = sponsor.company_id or self.env.company
        program = self._portal_get_program(company)
        if not program:
            return self.browse(), {
                "form": self.env._("Referrals are not open at the moment.")
            }
        errors = self._portal_validate_form(form)
        if errors:
            return self.browse(), errors
        Attempt = self.env["referral.portal.attempt"].sudo()
        if Attempt._is_over_limit(sponsor, ip_address, program.portal_daily_limit):
            return self.browse(), {
                "form": self.env._(
                    "You have reached today's limit of referrals. Thank you! "
                    "Please try again tomorrow."
                )
            }
        vals = self._portal_prepare_referral_values(sponsor, company, form, source)
        refusal = self._portal_check_refusals(sponsor, program, vals)
        if refusal:
            return self.browse(), {"form": refusal}
        try:
            with self.env.cr.savepoint():
                referral = self.sudo().create(vals)
        except (UserError, ValidationError):
            return self.browse(), {
                "form": self.env._(
                    "We could not record this referral. Please check the details "
                    "or contact us."
                )
            }
        Attempt._record(sponsor, ip_address)
        referral._portal_notify_received()
        return referral, {}

    @api.model
    def _portal_validate_form(self, form):
        """{field: message} for the fields of ``form`` the customer must fix."""
        errors = {}
        if not (form.get("company_name") or "").strip():
            errors["company_name"] = self.env._("Enter the name of the company.")
        if not (form.get("contact_name") or "").strip():
            errors["contact_name"] = self.env._("Enter the name of your contact.")
        email = (form.get("email") or "").strip()
        if not email:
            errors["email"] = self.env._("Enter your contact's email address.")
        elif not email_normalize(email):
            errors["email"] = self.env._(
                "This email address is not valid (e.g. name@company.com)."
            )
        if len(form.get("message") or "") > 2000:
            errors["message"] = self.env._("Keep the message under 2,000 characters.")
        if not form.get("consent"):
            errors["consent"] = self.env._(
                "Tick this box: we only contact people who agreed to it."
            )
        return errors

    @api.model
    def _portal_prepare_referral_values(self, sponsor, company, form, source):
        message = (form.get("message") or "").strip()
        return {
            "sponsor_id": sponsor.id,
            "company_id": company.id,
            "source": source,
            "referee_company_name": form["company_name"].strip(),
            "referee_contact_name": form["contact_name"].strip(),
            "referee_email": form["email"].strip(),
            "referee_phone": (form.get("phone") or "").strip() or False,
            # Escaped: the message is text, never markup.
            "note": plaintext2html(message) if message else False,
        }

    @api.model
    def _portal_check_refusals(self, sponsor, program, vals):
        """The back office's refusals, said to the customer: a message, or
        False when the referral may be created."""
        if not sponsor.active or not program._is_sponsor_eligible(sponsor):
            return self.env._(
                "Your account cannot refer companies yet: please contact your "
                "salesperson."
            )
        referee = self.sudo()._find_referee(vals).commercial_partner_id
        if not referee:
            return False
        if referee == sponsor:
            return self.env._("You cannot refer your own company.")
        partner, seen = sponsor.sponsor_id, sponsor
        while partner and partner not in seen:
            if partner == referee:
                return self.env._(
                    "This company referred you to us: it cannot be referred back."
                )
            seen |= partner
            partner = partner.sponsor_id
        if self.sudo().search_count(
            [
                ("referee_id", "=", referee.id),
                ("company_id", "=", vals["company_id"]),
                ("state", "in", ACTIVE_STATES),
            ],
            limit=1,
        ):
            return self.env._(
                "This company has already been referred to us. Thank you all the "
                "same!"
            )
        if not program.allow_customer_referee and self.env[
            "sale.order"
        ].sudo().search_count(
            [
                ("partner_id", "child_of", referee.ids),
                ("company_id", "=", vals["company_id"]),
                ("state", "=", "sale"),
            ],
            limit=1,
        ):
            return self.env._(
                "This company is already our customer: the program rewards "
                "new customers only."
            )
        return False

    def _portal_notify_received(self):
        """Queue the emails of a referral sent from the portal or a link:
        the sponsor's acknowledgement and the salesperson's notice."""
        self.ensure_one()
        self.sudo()._send_referral_mail(
            "sale_referral_lifecycle.mail_template_referral_received"
        )
        if self.user_id:
            self.sudo()._send_referral_mail(
                "sale_referral_lifecycle.mail_template_referral_new_salesperson"
            )

    def _send_referral_mail(self, template_xmlid):
        """Queue the email of ``template_xmlid`` for each referral (sent by
        the mail queue's cron, not within the current request)."""
        template = self.env.ref(template_xmlid, raise_if_not_found=False)
        if not template:
            return
        for referral in self:
            template.send_mail(referral.id, force_send=False)
