# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models

from .referral_referral import OPEN_STATES


class SaleOrder(models.Model):
    """The code of a referral link, remembered on the referee's quotations."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "sale.order"  # pylint: disable=consider-merging-classes-inherited

    @api.model_create_multi
    def create(self, vals_list):
        self._fill_referral_link_codes(vals_list)
        return super().create(vals_list)

    @api.model
    def _fill_referral_link_codes(self, vals_list):
        """Quotations of a company referred through a sponsor's public link
        (``/r/<code>``), still open, get the sponsor's code when none was
        typed: the salesperson sees who referred the customer."""
        todo = [
            v for v in vals_list if v.get("partner_id") and not v.get("referral_code")
        ]
        if not todo:
            return
        partners = self.env["res.partner"].browse({v["partner_id"] for v in todo})
        # sudo: the referral belongs to the sponsor's salesperson.
        referrals = (
            self.env["referral.referral"]
            .sudo()
            .search(
                [
                    ("referee_id", "in", partners.commercial_partner_id.ids),
                    ("source", "=", "code"),
                    ("state", "in", OPEN_STATES),
                ]
            )
        )
        if not referrals:
            return
        for vals in todo:
            referee = self.env["res.partner"].browse(vals["partner_id"])
            company_id = vals.get("company_id") or self.env.company.id
            referral = referrals.filtered(
                lambda r, p=referee.commercial_partner_id, c=company_id: (
                    r.referee_id == p and r.company_id.id == c
                )
            )[:1]
            sponsor = referral.sponsor_id
            if sponsor.active and referral.program_id._is_sponsor_eligible(sponsor):
                vals["referral_code"] = sponsor.referral_code
