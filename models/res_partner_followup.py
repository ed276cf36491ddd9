# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


# The contact's follow-up fields stay apart from its referral and lifecycle
# code in res_partner.py: one concern per file.
# pylint: disable=consider-merging-classes-inherited
class ResPartner(models.Model):
    _inherit = "res.partner"

    followup_blocked = fields.Boolean(
        string="No Automated Follow-ups",
        help="Follow-up rules skip this contact (and log it).",
    )
    followup_log_ids = fields.One2many(
        "partner.followup.log", "partner_id", string="Follow-ups"
    )
    followup_count = fields.Integer(
        string="Follow-up Count", compute="_compute_followup_next"
    )
    followup_next = fields.Char(
        string="Next Follow-up",
        compute="_compute_followup_next",
        help="The next follow-up planned: an open follow-up activity or a "
        "postponed step.",
    )

    @api.depends("followup_log_ids")
    def _compute_followup_next(self):
        Log = self.env["partner.followup.log"]
        partners = self.commercial_partner_id
        counts = dict(
            Log._read_group(
                [("partner_id", "in", partners.ids)], ["partner_id"], ["__count"]
            )
        )
        postponed = Log.search(
            [("partner_id", "in", partners.ids), ("outcome", "=", "postponed")],
            order="scheduled_date, id",
        )
        activities = self.env["mail.activity"].search(
            [
                ("followup_log_id.partner_id", "in", partners.ids),
                ("followup_log_id", "!=", False),
            ],
            order="date_deadline, id",
        )
        for partner in self:
            commercial = partner.commercial_partner_id
            partner.followup_count = counts.get(commercial, 0)
            candidates = [
                (a.date_deadline, a.summary or a.activity_type_id.name)
                for a in activities
                if a.followup_log_id.partner_id == commercial
            ][:1] + [
                (log.scheduled_date, log.step_id.name)
                for log in postponed
                if log.partner_id == commercial
            ][:1]
            nearest = min(candidates, default=None)
            partner.followup_next = (
                self.env._(
                    "%(what)s on %(date)s",
                    what=nearest[1],
                    date=fields.Date.to_string(nearest[0]),
                )
                if nearest
                else False
            )

    def action_view_followups(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_partner_followup_log"
        )
        action["domain"] = [("partner_id", "=", self.commercial_partner_id.id)]
        action["context"] = {}
        return action
