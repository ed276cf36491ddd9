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
        an existing contact when one matches, else a new one. The new ones
        are created in one batch; two values with the same details get the
        same new contact (and the single active referral check refuses the
        second)."""
        to_create = {}
        for vals in vals_list:
            if vals.get("referee_id"):
                continue
            referee = self._find_referee(vals)
            if referee:
                vals["referee_id"] = referee.commercial_partner_id.id
            else:
                to_create.setdefault(self._get_referee_key(vals), []).append(vals)
        referees = self._create_referees([group[0] for group in to_create.values()])
        for group, referee in zip(to_create.values(), referees, strict=True):
            for vals in group:
                vals["referee_id"] = referee.id

    @api.model
    def _get_referee_key(self, vals):
        """Values matching no contact with the same key get the same new
        contact, as ``_find_referee`` would find it: the normalised email,
        else the company name with the Tax ID, else none alike."""
        email = email_normalize(vals.get("referee_email") or "")
        if email:
            return ("email", email)
        company_name = (vals.get("referee_company_name") or "").strip().lower()
        vat = (vals.get("referee_vat") or "").replace(" ", "").upper()
        if company_name and vat:
            return ("company", company_name, vat)
        return ("values", id(vals))

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
        return self._create_referees([vals])

    @api.model
    def _create_referees(self, vals_list):
        """Create the referees of ``vals_list`` (their commercial entities,
        returned in that order): a company with its contact person, or the
        one the details name; one create per kind for all."""
        entity_vals, person_vals = [], []
        for vals in vals_list:
            company_name = (vals.get("referee_company_name") or "").strip()
            contact_name = (vals.get("referee_contact_name") or "").strip()
            if not company_name and not contact_name:
                raise ValidationError(
                    self.env._(
                        "Give at least the name of the referred company or of "
                        "the person to contact."
                    )
                )
            values = self._prepare_referee_partner_values(vals)
            if not company_name:
                entity_vals.append(dict(values, name=contact_name))
            elif not contact_name:
                entity_vals.append(dict(values, name=company_name, is_company=True))
            else:
                entity_vals.append(
                    dict(
                        values,
                        name=company_name,
                        is_company=True,
                        email=False,
                        phone=False,
                    )
                )
                person_vals.append(
                    (
                        len(entity_vals) - 1,
                        dict(
                            values,
                            name=contact_name,
                            vat=False,
                            first_contact_date=False,
                        ),
                    )
                )
        Partner = self.env["res.partner"]
        entities = Partner.create(entity_vals) if entity_vals else Partner
        if person_vals:
            Partner.create(
                [
                    dict(values, parent_id=entities[index].id)
                    for index, values in person_vals
                ]
            )
        return entities

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
        # The id is cached: no query to find the source (as env.ref does).
        source = self.env["utm.source"].browse(
            self.env["ir.model.data"]._xmlid_to_res_id(
                "sale_referral_lifecycle.utm_source_referral"
            )
        )
        # The first contact is per company: the referral's.
        for company, referrals in self.sudo().grouped("company_id").items():
            referees = referrals.referee_id.with_company(company)
            first_contacts = referees.filtered(lambda p: not p.first_contact_date)
            if first_contacts:
                first_contacts.write(
                    {
                        "first_contact_date": fields.Date.context_today(self),
                        "first_contact_source_id": source.id,
                    }
                )
            # A quotation sent before the referral (a code typed on it) dated
            # the first contact without knowing its channel: the referral is
            # it.
            (referees - first_contacts).filtered(
                lambda p: not p.first_contact_source_id
            ).write({"first_contact_source_id": source.id})
