# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


class ReferralCreateWizard(models.TransientModel):
    _name = "referral.create.wizard"
    _description = "Refer a company"
    _check_company_auto = True

    sponsor_id = fields.Many2one("res.partner", required=True, check_company=True)
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    referee_company_name = fields.Char(string="Referred Company")
    referee_contact_name = fields.Char(string="Contact Name")
    referee_email = fields.Char(string="Email")
    referee_phone = fields.Char(string="Phone")
    referee_vat = fields.Char(string="Tax ID")
    note = fields.Html()
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        compute="_compute_user_id",
        store=True,
        readonly=False,
        domain="[('share', '=', False), ('company_ids', 'in', company_id)]",
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        # Opened from the contact's Actions menu: the contact is the sponsor.
        if (
            "sponsor_id" in fields_list
            and not values.get("sponsor_id")
            and context.get("active_model") == "res.partner"
            and context.get("active_id")
        ):
            partner = self.env["res.partner"].browse(context["active_id"])
            values["sponsor_id"] = partner.commercial_partner_id.id
        # Said when the wizard opens, not once it is filled in.
        if values.get("sponsor_id"):
            company = self.env["res.company"].browse(
                values.get("company_id") or self.env.company.id
            )
            self.env["res.partner"].browse(
                values["sponsor_id"]
            )._check_referral_sponsor(company)
        return values

    @api.depends("sponsor_id")
    def _compute_user_id(self):
        for wizard in self:
            sponsor = wizard.sponsor_id.commercial_partner_id
            wizard.user_id = sponsor.user_id or self.env.user

    def _prepare_referral_values(self):
        self.ensure_one()
        return {
            "sponsor_id": self.sponsor_id.id,
            "company_id": self.company_id.id,
            "user_id": self.user_id.id,
            "referee_company_name": self.referee_company_name,
            "referee_contact_name": self.referee_contact_name,
            "referee_email": self.referee_email,
            "referee_phone": self.referee_phone,
            "referee_vat": self.referee_vat,
            "note": self.note,
            "source": "backend",
        }

    def action_create(self):
        self.ensure_one()
        referral = self.env["referral.referral"].create(self._prepare_referral_values())
        if not referral.has_access("read"):
            return {"type": "ir.actions.act_window_close"}
        return {
            "type": "ir.actions.act_window",
            "res_model": "referral.referral",
            "res_id": referral.id,
            "views": [(False, "form")],
        }
