# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import email_normalize


class ReferralReferral(models.Model):
    """The referred company: found among the contacts from the details the
    sponsor gave, or created, then routed to the sponsor's salesperson."""

    # One concern per file (see the docstring); merged by the ORM.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    @api.model
    def _resolve_referees(self, vals_list):
        """Set ``referee_id`` of the values that only carry raw details:
        an existing contact when one matches, else a new one."""
        for vals in vals_list:
            if vals.get("referee_id"):
                continue
            referee = self._find_referee(vals)
            if not referee:
                referee = self._create_referee(vals)
            vals["referee_id"] = referee.commercial_partner_id.id

    @api.model
    def _find_referee(self, vals):
        """Return the existing contact the raw details designate: same
        normalised email first, then same company name and tax ID."""
        Partner = self.env["res.partner"]
        email = email_normalize(vals.get("referee_email") or "")
        if email:
            partner = Partner.search([("email_normalized", "=", email)], limit=1)
            if partner:
                return partner
        company_name = (vals.get("referee_company_name") or "").strip()
        vat = (vals.get("referee_vat") or "").replace(" ", "").upper()
        if company_name and vat:
            return Partner.search(
                [
                    ("is_company", "=", True),
                    ("name", "=ilike", company_name),
                    ("vat", "=ilike", vat),
                ],
                limit=1,
            )
        return Partner

    @api.model
    def _create_referee(self, vals):
        company_name = (vals.get("referee_company_name") or "").strip()
        contact_name = (vals.get("referee_contact_name") or "").strip()
        if not company_name and not contact_name:
            raise ValidationError(
                self.env._(
                    "Give at least the name of the referred company or of "
                    "the person to contact."
                )
            )
        Partner = self.env["res.partner"]
        values = self._prepare_referee_partner_values(vals)
        if not company_name:
            return Partner.create(dict(values, name=contact_name))
        if not contact_name:
            return Partner.create(dict(values, name=company_name, is_company=True))
        company = Partner.create(
            dict(values, name=company_name, is_company=True, email=False, phone=False)
        )
        Partner.create(
            dict(
                values,
                name=contact_name,
                parent_id=company.id,
                vat=False,
                first_contact_date=False,
            )
        )
        return company

    @api.model
    def _prepare_referee_partner_values(self, vals):
        """Values of the contact created for a referee; ``name`` is set by
        the caller. Its first contact is the referral's day (an imported
        referral may be older than today)."""
        values = {
            "email": vals.get("referee_email"),
            "phone": vals.get("referee_phone"),
            "vat": vals.get("referee_vat"),
            "user_id": vals.get("user_id"),
        }
        if vals.get("date_referral"):
            values["first_contact_date"] = self._get_referral_day(vals)
        return values

    @api.model
    def _get_referral_day(self, vals):
        """The day of ``vals["date_referral"]`` in the time zone of the
        referral's company."""
        company = self.env["res.company"].browse(
            vals.get("company_id") or self.env.company.id
        )
        tz = company.partner_id.tz or self.env.user.tz or "UTC"
        return fields.Datetime.context_timestamp(
            self.with_context(tz=tz),
            fields.Datetime.to_datetime(vals["date_referral"]),
        ).date()

    def _assign_referee_salesperson(self):
        """Route the referees (and their contact persons) to the sponsor's
        salesperson, when they have none, and record the referral as their
        first contact when it is. Done as superuser: routing is part of
        recording a referral, whoever records it."""
        for user, referrals in self.filtered("user_id").grouped("user_id").items():
            referees = referrals.sudo().referee_id
            (referees | referees.child_ids).filtered(lambda p: not p.user_id).write(
                {"user_id": user.id}
            )
        referees = self.sudo().referee_id
        source = self.env.ref("sale_referral_lifecycle.utm_source_referral")
        first_contacts = referees.filtered(lambda p: not p.first_contact_date)
        if first_contacts:
            first_contacts.write(
                {
                    "first_contact_date": fields.Date.context_today(self),
                    "first_contact_source_id": source.id,
                }
            )
        # A quotation sent before the referral (a code typed on it) dated the
        # first contact without knowing its channel: the referral is it.
        (referees - first_contacts).filtered(
            lambda p: not p.first_contact_source_id
        ).write({"first_contact_source_id": source.id})
