# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models


class ResPartner(models.Model):
    """The contact's public referral link."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "res.partner"  # pylint: disable=consider-merging-classes-inherited

    def _get_referral_share_url(self):
        """The public link of this contact's referral code."""
        self.ensure_one()
        base_url = self.get_base_url()
        return f"{base_url}/r/{self.commercial_partner_id.referral_code}"

    @api.model
    def _portal_find_link_sponsor(self, code):
        """The active commercial entity whose referral code is ``code``, if
        any (archived contacts are not found)."""
        code = (code or "").strip()
        if not code or len(code) > 64:
            return self.browse()
        partner = self.search([("referral_code", "=", code)], limit=1)
        sponsor = partner.commercial_partner_id
        return sponsor if sponsor.active else self.browse()
