# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    followup_min_gap_days = fields.Integer(
        related="company_id.followup_min_gap_days", readonly=False
    )
    lifecycle_move_back = fields.Selection(
        related="company_id.lifecycle_move_back", readonly=False
    )

    def action_open_referral_program(self):
        """The referral program of the company being set (a new one when it
        has none)."""
        self.ensure_one()
        program = self.env["referral.program"]._get_company_program(self.company_id)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_program"
        )
        action.update(
            {
                "views": [(False, "form")],
                "res_id": program.id,
                "context": {"default_company_id": self.company_id.id},
            }
        )
        return action
