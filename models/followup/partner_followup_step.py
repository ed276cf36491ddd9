# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class PartnerFollowupStep(models.Model):
    _name = "partner.followup.step"
    _description = "Follow-up Step"
    _order = "rule_id, sequence, id"

    name = fields.Char(required=True, translate=True)
    sequence = fields.Integer(default=10)
    delay = fields.Integer(
        help="Days after the trigger's date (the quotation, the order, the "
        "stage change, the referral, the last sign of life, the campaign's "
        "first step); before the subscription end when negative.",
    )
    rule_id = fields.Many2one(
        "partner.followup.rule", required=True, index=True, ondelete="cascade"
    )
    company_id = fields.Many2one(related="rule_id.company_id")
    activity_plan_id = fields.Many2one(
        "mail.activity.plan",
        string="Activity Plan",
        help="Activities scheduled on the record; deadlines in working days "
        "from the day the step fires.",
    )
    mail_template_id = fields.Many2one(
        "mail.template",
        string="Email Template",
        help="Email sent to the contact; its model must be the rule's record.",
    )

    @api.constrains("activity_plan_id", "mail_template_id", "rule_id")
    def _check_action_model(self):
        for step in self:
            model = step.rule_id.res_model
            plan_model = step.activity_plan_id.res_model
            template_model = step.mail_template_id.model
            if (plan_model and plan_model != model) or (
                template_model and template_model != model
            ):
                raise ValidationError(
                    self.env._(
                        "The step %(step)s acts on %(model)s: choose an activity "
                        "plan and an email template made for that model.",
                        step=step.name,
                        model=model,
                    )
                )
