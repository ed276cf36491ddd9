# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models
from odoo.exceptions import UserError


class ReportReferralStatementPartner(models.AbstractModel):
    """The same statement printed from contacts: the wallets of their
    commercial entities in the current company."""

    _name = "report.sale_referral_lifecycle.report_sponsor_statement"
    _inherit = "report.sale_referral_lifecycle.report_referral_statement"
    _description = "Referral Credit Statement of Contacts"

    @api.model
    def _get_report_values(self, docids, data=None):
        partners = self.env["res.partner"].browse(docids)
        company = self.env.company
        wallets = self.env["referral.wallet"].search(
            [
                ("partner_id", "in", partners.commercial_partner_id.ids),
                ("company_id", "=", company.id),
            ]
        )
        if not wallets:
            raise UserError(
                self.env._(
                    "%(partners)s earned no referral credit in %(company)s yet: "
                    "there is no statement to print.",
                    partners=", ".join(partners.mapped("display_name")),
                    company=company.name,
                )
            )
        return super()._get_report_values(wallets.ids, data=data)
