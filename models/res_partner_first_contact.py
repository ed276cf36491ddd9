# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.http import request


class ResPartner(models.Model):
    """The first contact: a commercial entity enters the lifecycle the moment
    it is created (by hand, by import, by a referral or from the portal),
    dated and with its channel when it is known."""

    # One concern per file (see the class docstring); merged by the ORM.
    _inherit = "res.partner"  # pylint: disable=consider-merging-classes-inherited

    @api.model_create_multi
    def create(self, vals_list):
        channel = self._get_first_contact_channel()
        vals_list = [
            self._prepare_first_contact_values(vals, channel)
            if self._is_commercial_entity_values(vals)
            else vals
            for vals in vals_list
        ]
        partners = super().create(vals_list)
        # Its first stage at once (Suspect by default), with its history row.
        partners.filtered(
            lambda p: p.commercial_partner_id == p and not p.lifecycle_stage_id
        )._lifecycle_recompute()
        return partners

    @api.model
    def _is_commercial_entity_values(self, vals):
        """Whether a contact created with ``vals`` is its own commercial
        entity: a company (subsidiaries too) or a contact without parent."""
        return vals.get("is_company") or not vals.get("parent_id")

    @api.model
    def _prepare_first_contact_values(self, vals, channel):
        """``vals`` with the first contact's date (today in the company's
        time zone), source and medium (``channel``) when not given."""
        vals = dict(vals)
        if not vals.get("first_contact_date"):
            company = self.env["res.company"].browse(vals.get("company_id"))
            vals["first_contact_date"] = self._lifecycle_today(company)
        for field_name, value in channel.items():
            if value and not vals.get(field_name):
                vals[field_name] = value
        return vals

    @api.model
    def _lifecycle_today(self, company=None):
        """Today in the time zone of ``company`` (else the current one)."""
        company = company or self.env.company
        tz = company.partner_id.tz or self.env.user.tz or "UTC"
        return fields.Date.context_today(self.with_context(tz=tz))

    @api.model
    def _get_first_contact_channel(self):
        """``{field: utm record id}`` of the channel that brings the contacts
        created now: the values in the context (``first_contact_source_id``,
        ``first_contact_medium_id``, or the utm ``source_id``/``medium_id``
        of the document creating them), else the utm cookies of the web
        request (a contact created from the portal or a public page)."""
        context = self.env.context
        channel = {
            "first_contact_source_id": context.get("default_first_contact_source_id")
            or context.get("default_source_id"),
            "first_contact_medium_id": context.get("default_first_contact_medium_id")
            or context.get("default_medium_id"),
        }
        if request and not all(channel.values()):
            Utm = self.env["utm.mixin"].sudo()
            for cookie, field_name, model in (
                ("odoo_utm_source", "first_contact_source_id", "utm.source"),
                ("odoo_utm_medium", "first_contact_medium_id", "utm.medium"),
            ):
                name = request.cookies.get(cookie)
                if name and not channel[field_name]:
                    # sudo: as utm.mixin's defaults, visitors name the channel.
                    channel[field_name] = Utm._find_or_create_record(model, name).id
        return channel
