# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import datetime, time, timedelta

import pytz

from odoo import fields, models


class ReferralReferral(models.Model):
    """The activities planned on a referral: the program's plan, due on the
    company's working days."""

    # One concern per file (see the docstring); merged by the ORM.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    def _launch_activity_plan(self):
        """Schedule the program's activity plan on each referral, deadlines
        counted in working days of the company's calendar."""
        model_id = self.env["ir.model"]._get_id(self._name)
        vals_list = []
        for referral in self.filtered("program_id.activity_plan_id"):
            plan = referral.program_id.activity_plan_id
            responsibles = self.env["res.users"]
            for template in plan.template_ids:
                responsible = template._determine_responsible(
                    referral.user_id, referral
                )["responsible"]
                responsible = responsible or referral.user_id or referral.create_uid
                responsibles |= responsible
                vals_list.append(
                    dict(
                        referral._prepare_plan_activity_values(template, responsible),
                        res_model_id=model_id,
                    )
                )
            # Followed first: creating several activities of one user on one
            # record in a batch would subscribe that user twice.
            referral.message_subscribe(partner_ids=responsibles.partner_id.ids)
        return self.env["mail.activity"].create(vals_list)

    def _prepare_plan_activity_values(self, template, responsible):
        """Values of the activity ``template`` plans for ``responsible``. An
        empty summary or note is the activity type's, translated in the
        responsible's language (plan templates are not translatable)."""
        self.ensure_one()
        activity_type = template.activity_type_id.with_context(
            lang=responsible.lang or self.env.lang
        )
        return {
            "res_id": self.id,
            "activity_type_id": activity_type.id,
            "summary": template.summary or activity_type.summary,
            "note": template.note or activity_type.default_note,
            "user_id": responsible.id,
            "date_deadline": self._get_plan_deadline(template),
            "automated": True,
        }

    def _get_plan_deadline(self, template):
        """Deadline of ``template``: a delay in days after the plan date
        counts the company's working days from tomorrow."""
        self.ensure_one()
        today = fields.Date.context_today(self)
        calendar = self.company_id.resource_calendar_id
        if (
            calendar
            and template.delay_unit == "days"
            and template.delay_from == "after_plan_date"
            and template.delay_count > 0
        ):
            # Tomorrow at midnight where the team works: a naive datetime
            # would be read as UTC and shift the days far from Europe.
            tz = pytz.timezone(calendar.tz or "UTC")
            start = tz.localize(datetime.combine(today + timedelta(days=1), time.min))
            deadline = calendar.plan_days(
                template.delay_count, start, compute_leaves=True
            )
            if deadline:
                return deadline.astimezone(tz).date()
        return template._get_date_deadline(today)
