# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Referral codes of contacts merged into another one: kept reserved for the
contact that survived the merge (a shared link or a code printed on a card
still reaches the same customer), never given to a new contact."""

from odoo import api, fields, models, tools


class ReferralCodeAlias(models.Model):
    _name = "referral.code.alias"
    _description = "Referral Code of a Merged Contact"
    _rec_name = "code"

    code = fields.Char(required=True, readonly=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Contact",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
        help="The contact the merged contact's code now reaches.",
    )

    _sql_constraints = [
        (
            "code_unique",
            "UNIQUE(code)",
            "This referral code is already reserved for another contact.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        aliases = super().create(vals_list)
        self.env.registry.clear_cache()
        return aliases

    @api.model
    @tools.ormcache()
    def _get_reserved_codes(self):
        """The codes no new contact may get (a few: one per merged contact
        that had one), cached."""
        # sudo: the codes are reserved whoever creates a contact.
        return frozenset(self.sudo().search([]).mapped("code"))  # pylint: disable=no-search-all
