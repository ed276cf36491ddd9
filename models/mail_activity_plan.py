# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class MailActivityPlan(models.Model):
    """Plan names in the user's language: the addon's plans ("New referral",
    the follow-up plans) are shown to salespeople in the schedule wizard and
    on the follow-up rules. Odoo 18 stores the name as plain text; as a
    translated field its column becomes jsonb, which Odoo converts back (to
    the English text) if the addon is uninstalled.

    Scheduling a plan on a record, for the referral calls and the follow-up
    steps alike: ``_prepare_scheduled_activities_values``."""

    _inherit = "mail.activity.plan"

    name = fields.Char(translate=True)

    def _prepare_scheduled_activities_values(
        self, record, days, on_demand=None, fallback=None, resolve=None
    ):
        """Values of the activities this plan schedules on ``record`` (one per
        template), due on the working days of ``days`` (a ``WorkingDays`` of
        the record's company).

        Who gets each activity: the user the template designates
        (``on_demand`` for the templates left to whoever launches the plan),
        else ``fallback()`` (called once, only when needed); or, when given,
        ``resolve(template)``, the responsible for every template (no
        activity for a template it gives nobody to)."""
        self.ensure_one()
        model_id = None
        fallback_user = None
        vals_list = []
        for template in self.template_ids:
            if resolve:
                responsible = resolve(template)
                if not responsible:
                    continue
            else:
                responsible = template._determine_responsible(on_demand, record)[
                    "responsible"
                ]
            if not responsible:
                if fallback_user is None:
                    fallback_user = (fallback() if fallback else None) or self.env[
                        "res.users"
                    ]
                responsible = fallback_user
            if model_id is None:
                model_id = self.env["ir.model"]._get_id(record._name)
            vals_list.append(
                dict(
                    template._prepare_scheduled_activity_values(
                        record, responsible, days
                    ),
                    res_model_id=model_id,
                )
            )
        return vals_list
