# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


class ReferralLostReason(models.Model):
    _name = "referral.lost.reason"
    _description = "Referral Lost Reason"
    _order = "sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Leave empty to offer the reason in every company.",
    )
    referral_count = fields.Integer(
        compute="_compute_referral_count", string="Lost Referrals"
    )

    @api.depends("name")
    def _compute_referral_count(self):
        counts = dict(
            self.env["referral.referral"]._read_group(
                [("lost_reason_id", "in", self.ids)], ["lost_reason_id"], ["__count"]
            )
        )
        for reason in self:
            reason.referral_count = counts.get(reason, 0)

    def action_view_referrals(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        action["domain"] = [("lost_reason_id", "=", self.id)]
        action["context"] = {"create": False}
        return action
