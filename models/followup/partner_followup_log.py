# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from markupsafe import Markup

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL

OUTCOMES = [
    ("done", "Done"),
    ("postponed", "Postponed"),
    ("skipped", "Skipped"),
    ("rearmed", "Re-armed"),
]
# Why the activity went to its responsible: the levels of the resolution
# order, first to last.
RESPONSIBLE_REASONS = [
    ("plan", "The plan's responsible"),
    ("document", "The document's salesperson"),
    ("contact", "The contact's salesperson"),
    ("rule", "The rule's fixed responsible"),
    ("team", "The sales team leader"),
    ("none", "Nobody available"),
]


class PartnerFollowupLog(models.Model):
    """What a follow-up rule did to a record, once per trigger occurrence: the
    UNIQUE constraint makes a second run (or a second server) insert nothing
    where a first one already acted. A postponed row keeps its key and fires
    later: its outcome moves to done or skipped.

    An audit trail: nobody writes or deletes rows through the interface or
    RPC; the engine alone records (in SQL) what it does. An occurrence is
    *released* when the situation it was about ended (its activities were
    removed) or a manager re-armed the step: the step may then act again for
    that occurrence, in a new row of the next ``cycle``."""

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
    occurrence_date = fields.Datetime(
        string="Counted From",
        readonly=True,
        help="The moment the occurrence happened (the quotation sent, the "
        "order confirmed...): the step's delay counts from it, and an answer "
        "of the contact after it stops a rule that stops on answers.",
    )
    cycle = fields.Integer(
        default=0,
        readonly=True,
        help="How many times the occurrence was released before this row.",
    )
    released = fields.Boolean(
        readonly=True,
        help="The situation ended (the activities were removed) or a manager "
        "re-armed the step: the step may act again for this occurrence.",
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
    responsible_id = fields.Many2one(
        "res.users",
        string="Assigned To",
        readonly=True,
        help="Who got the step's activities.",
    )
    responsible_reason = fields.Selection(
        RESPONSIBLE_REASONS,
        string="Assigned Because",
        readonly=True,
        help="The level of the resolution order that designated the "
        "responsible: the plan's responsible, the document's salesperson, the "
        "contact's salesperson, the rule's fixed responsible, the sales team "
        "leader (archived users, users without access to the company and "
        "OdooBot skipped at each level).",
    )
    company_id = fields.Many2one("res.company", required=True, index=True)
    activity_ids = fields.One2many("mail.activity", "followup_log_id")
    document_name = fields.Char(string="Document", compute="_compute_document_name")

    _sql_constraints = [
        (
            "occurrence_unique",
            "UNIQUE(rule_id, step_id, res_model, res_id, occurrence, company_id,"
            " cycle)",
            "A follow-up step acts once per record, occurrence and company.",
        ),
    ]

    def write(self, vals):  # pylint: disable=method-required-super
        # No access right allows writing the log: say so first.
        self.check_access("write")
        raise UserError(
            self.env._(
                "The follow-up log is an audit trail: its rows cannot be "
                "changed. Re-arm a step to let it act again."
            )
        )

    @api.ondelete(at_uninstall=False)
    def _unlink_never(self):
        raise UserError(
            self.env._(
                "The follow-up log is an audit trail: its rows cannot be "
                "deleted. Re-arm a step to let it act again."
            )
        )

    def action_rearm(self):
        """Let the steps of these rows act again for their occurrence: a
        manager's decision, recorded as a new row and on the contact's
        chatter; the rows themselves are kept as they are."""
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise UserError(
                self.env._("Only sales managers may re-arm a follow-up step.")
            )
        self.check_access("read")
        logs = self.filtered(
            lambda log: not log.released and log.outcome != "postponed"
        )
        if not logs:
            return True
        self.env.cr.execute(
            SQL(
                """
                UPDATE partner_followup_log SET released = true
                 WHERE id IN %(ids)s AND NOT released
                RETURNING id
                """,
                ids=tuple(logs.ids),
            )
        )
        logs = self.browse([row[0] for row in self.env.cr.fetchall()])
        logs.invalidate_recordset()
        today = fields.Date.context_today(self)
        reason = self.env._("re-armed by %(user)s", user=self.env.user.name)
        # sudo: the log is written by the engine and this action only.
        self.sudo().with_context(followup_log_engine=True).create(
            [
                {
                    "rule_id": log.rule_id.id,
                    "step_id": log.step_id.id,
                    "res_model": log.res_model,
                    "res_id": log.res_id,
                    "occurrence": log.occurrence,
                    "occurrence_date": log.occurrence_date,
                    "cycle": log.cycle + 1,
                    "released": True,
                    "partner_id": log.partner_id.id,
                    "user_id": log.user_id.id,
                    "company_id": log.company_id.id,
                    "due_date": log.due_date,
                    "scheduled_date": today,
                    "outcome": "rearmed",
                    "reason": reason,
                }
                for log in logs
            ]
        )
        bodies = {}
        for log in logs:
            line = Markup("<p>%s</p>") % self.env._(
                "Follow-up rule %(rule)s, step %(step)s re-armed by %(user)s "
                "for %(document)s: it may act again.",
                rule=log.rule_id.name,
                step=log.step_id.name,
                user=self.env.user.name,
                document=log.document_name or log.partner_id.display_name,
            )
            bodies[log.partner_id.id] = bodies.get(log.partner_id.id, Markup()) + line
        self.env["res.partner"].browse(list(bodies)).sudo()._message_log_batch(bodies)
        return True

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
