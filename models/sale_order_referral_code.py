# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


def normalize_referral_code(code):
    """A typed code as codes are made: upper case, without spaces."""
    return "".join((code or "").split()).upper()


# One concern per file: sale_order.py holds the order's referral credit; this
# one the referral code typed on the order.
class SaleOrder(models.Model):
    _inherit = "sale.order"  # pylint: disable=consider-merging-classes-inherited

    referral_code_sponsor_id = fields.Many2one(
        "res.partner",
        string="Code of",
        compute="_compute_referral_code_sponsor_id",
        help="Customer whose referral code was typed: the order is linked to "
        "its referral on confirmation.",
    )

    @api.depends("referral_code")
    def _compute_referral_code_sponsor_id(self):
        codes = {order: normalize_referral_code(order.referral_code) for order in self}
        sponsors = self.env["res.partner"]._find_by_referral_code(codes.values())
        for order in self:
            order.referral_code_sponsor_id = sponsors.get(codes[order], False)

    @api.model_create_multi
    def create(self, vals_list):
        for vals in vals_list:
            self._normalize_referral_code(vals)
        return super().create(vals_list)

    def write(self, vals):
        self._normalize_referral_code(vals)
        return super().write(vals)

    @api.model
    def _normalize_referral_code(self, vals):
        if vals.get("referral_code"):
            vals["referral_code"] = (
                normalize_referral_code(vals["referral_code"]) or False
            )
