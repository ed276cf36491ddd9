# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models

OUTCOMES = [
    ("done", "Done"),
    ("postponed", "Postponed"),
    ("skipped", "Skipped"),
]


class PartnerFollowupLog(models.Model):
    """What a follow-up rule did to a record, once per trigger occurrence: the
    UNIQUE constraint makes a second run (or a second server) insert nothing
    where a first one already acted. A postponed row keeps its key and fires
    later: its outcome moves to done or skipped."""

    _name = "partner.followup.log"
    _description = "Follow-up Log"
    _order = "scheduled_date desc, id desc"
    _rec_name = "rule_id"

    res_model = fields.Char(string="Document Model", required=True)
    res_id = fields.Many2oneReference(
        string="Document ID", model_field="res_model", required=True
    )
    occurrence = fields.Char(
        required=True,
        help="Which occurrence of the trigger: the quotation or order date, the "
        "subscription end date, the stage change, the campaign...",
    )
    due_date = fields.Date(
        required=True, help="When the step was due in the first place."
    )
    scheduled_date = fields.Date(
        required=True,
        index=True,
        help="When the step fired, or will be tried again when postponed.",
    )
    date_done = fields.Datetime(string="Done On", readonly=True)
    outcome = fields.Selection(OUTCOMES, required=True, index=True)
    reason = fields.Char(help="Why the step was postponed or skipped.")
    postpone_count = fields.Integer(string="Times Postponed")
    rule_id = fields.Many2one(
        "partner.followup.rule", required=True, index=True, ondelete="cascade"
    )
    step_id = fields.Many2one(
        "partner.followup.step", required=True, index=True, ondelete="cascade"
    )
    kind = fields.Selection(related="rule_id.kind", store=True)
    partner_id = fields.Many2one(
        "res.partner",
        string="Contact",
        required=True,
        index=True,
        ondelete="cascade",
        help="The commercial entity followed up.",
    )
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        index=True,
        help="The contact's salesperson when the step was handled.",
    )
    company_id = fields.Many2one("res.company", required=True, index=True)
    activity_ids = fields.One2many("mail.activity", "followup_log_id")
    document_name = fields.Char(string="Document", compute="_compute_document_name")

    _sql_constraints = [
        (
            "occurrence_unique",
            "UNIQUE(rule_id, step_id, res_model, res_id, occurrence)",
            "A follow-up step acts once per record and occurrence.",
        ),
    ]

    @api.depends("res_model", "res_id")
    def _compute_document_name(self):
        names = {}
        for model in set(self.mapped("res_model")) & set(self.env.registry):
            ids = self.filtered(lambda log, m=model: log.res_model == m).mapped(
                "res_id"
            )
            # The document may have been deleted since, or be out of reach.
            records = self.env[model].browse(ids).exists()._filtered_access("read")
            names.update({(model, r.id): r.display_name for r in records})
        for log in self:
            log.document_name = names.get((log.res_model, log.res_id), False)

    def action_open_document(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
