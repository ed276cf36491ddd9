# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools.mail import is_html_empty


class ReferralLostWizard(models.TransientModel):
    _name = "referral.lost.wizard"
    _description = "Mark Referrals as Lost"

    referral_ids = fields.Many2many("referral.referral", string="Referrals")
    lost_reason_id = fields.Many2one(
        "referral.lost.reason",
        string="Lost Reason",
        required=True,
        domain="['|', ('company_id', '=', False), ('company_id', 'in', company_ids)]",
    )
    company_ids = fields.Many2many(
        "res.company", compute="_compute_company_ids", string="Companies"
    )
    lost_feedback = fields.Html(
        string="Closing Note", sanitize=True, help="Posted in the chatter."
    )

    @api.depends("referral_ids.company_id")
    def _compute_company_ids(self):
        for wizard in self:
            wizard.company_ids = wizard.referral_ids.company_id

    def action_lost_reason_apply(self):
        self.ensure_one()
        referrals = self.referral_ids
        if not is_html_empty(self.lost_feedback):
            referrals._track_set_log_message(
                Markup("<div><p>%s</p>%s</div>")
                % (self.env._("Closing note:"), self.lost_feedback)
            )
        referrals.action_mark_lost(lost_reason_id=self.lost_reason_id.id)
        return {"type": "ir.actions.act_window_close"}
