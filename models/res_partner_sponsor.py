# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import UserError


# One concern per file: res_partner.py (referral code, balance and the
# lifecycle engine) is well over the size of a file already.
class ResPartner(models.Model):
    """Whether a contact may sponsor in the current company's program: the
    Refer a Company button and wizard say why not before anything is typed."""

    _inherit = "res.partner"  # pylint: disable=consider-merging-classes-inherited

    referral_sponsor_refusal = fields.Char(
        string="Cannot Sponsor",
        compute="_compute_referral_sponsor_refusal",
        help="Why this contact may not refer a company in the current "
        "company's referral program; empty when it may.",
    )

    # Read on the contact form only: no dependencies, whose inverses would
    # cost a query on every order confirmation (stages move then).
    @api.depends_context("company")
    def _compute_referral_sponsor_refusal(self):
        refusals = self._get_referral_sponsor_refusals(self.env.company)
        for partner in self:
            partner.referral_sponsor_refusal = refusals.get(
                partner.commercial_partner_id, False
            )

    def _get_referral_sponsor_refusals(self, company):
        """``{commercial entity: reason}`` for those of these contacts that
        may not sponsor in ``company``."""
        program = self.env["referral.program"].sudo()._get_company_program(company)
        if not program:
            reason = self.env._(
                "%(company)s has no active referral program: create one in "
                "Sales > Configuration > Referral Programs.",
                company=company.display_name,
            )
            return dict.fromkeys(self.commercial_partner_id, reason)
        return program._get_sponsor_refusals(self)

    def _check_referral_sponsor(self, company):
        """Refuse clearly, before the Refer a Company wizard is filled in,
        a contact that may not sponsor in ``company``."""
        refusals = self._get_referral_sponsor_refusals(company)
        if refusals:
            raise UserError("\n".join(refusals.values()))
