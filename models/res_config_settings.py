# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    followup_min_gap_days = fields.Integer(
        related="company_id.followup_min_gap_days", readonly=False
    )
