# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Execution: the activities, emails and chatter notes of the steps the
engine claimed, created in bulk (one create per model, one composer per
email template)."""

from collections import defaultdict

from markupsafe import Markup

from odoo import models
from odoo.tools import format_date


# The engine is split by concern (detection, execution, source hooks), each
# file under 400 lines, as the code map asks.
# pylint: disable=consider-merging-classes-inherited
class PartnerFollowupEngine(models.AbstractModel):
    _inherit = "partner.followup.engine"

    def _execute(self, fired, days):
        """``fired``: (decision, log id) pairs whose step fires now."""
        records = self._browse_sources([decision.due for decision, _id in fired])
        # Read once for the batch: the contacts' salespeople (fallbacks).
        partners = (
            self.env["res.partner"]
            .with_context(active_test=False)
            .browse({decision.due.partner_id for decision, _id in fired})
        )
        partners.fetch(["user_id"])
        fallbacks = {}
        activity_vals, notes = [], defaultdict(list)
        mails = defaultdict(list)
        for decision, log_id in fired:
            due = decision.due
            record = records[due.res_model, due.res_id]
            partner = partners.browse(due.partner_id).with_prefetch(partners._ids)
            for template in due.step.activity_plan_id.template_ids:
                responsible = template._determine_responsible(due.rule.user_id, record)[
                    "responsible"
                ]
                if not responsible:
                    key = (partner.user_id, due.rule)
                    if key not in fallbacks:
                        fallbacks[key] = self._get_fallback_responsible(
                            partner, due.rule
                        )
                    responsible = fallbacks[key]
                vals = self._prepare_activity_values(
                    template, record, responsible, days
                )
                vals["followup_log_id"] = log_id
                activity_vals.append(vals)
                notes[due].append(
                    self.env._(
                        "activity '%(summary)s' for %(user)s, due on %(date)s",
                        summary=vals["summary"] or template.activity_type_id.name,
                        user=responsible.name,
                        date=format_date(self.env, vals["date_deadline"]),
                    )
                )
            if due.step.mail_template_id:
                mails[due.step.mail_template_id].append(record.id)
                notes[due].append(
                    self.env._(
                        "email '%(template)s'", template=due.step.mail_template_id.name
                    )
                )
        if activity_vals:
            # Automated activities: no email to each assignee for each of them.
            self.env["mail.activity"].with_context(
                mail_activity_quick_update=True
            ).create(activity_vals)
            for model in {model for model, _res_id in records}:
                self.env[model].invalidate_model(["activity_ids"])
        for template, res_ids in mails.items():
            self._send_template(template, res_ids)
        self._log_in_chatter(notes, records)

    def _browse_sources(self, due_steps):
        ids = defaultdict(set)
        for due in due_steps:
            ids[due.res_model].add(due.res_id)
        return {
            (model, record.id): record
            for model, res_ids in ids.items()
            for record in self.env[model]
            .with_context(active_test=False)
            .browse(res_ids)
        }

    def _prepare_activity_values(self, template, record, responsible, days):
        return {
            "res_model_id": self.env["ir.model"]._get_id(record._name),
            "res_id": record.id,
            "activity_type_id": template.activity_type_id.id,
            "summary": template.summary,
            "note": template.note,
            "user_id": responsible.id,
            "date_deadline": self._get_activity_deadline(template, days),
            "automated": True,
        }

    def _get_fallback_responsible(self, partner, rule):
        """Nobody designated by the template: the leader of the contact's
        salesperson's team, the rule's fixed responsible, the leader of the
        company's first sales team, the rule's author."""
        return (
            partner.user_id.sale_team_id.user_id
            or rule.user_id
            or self.env["crm.team"]
            .search([("company_id", "in", (False, self.env.company.id))], limit=1)
            .user_id
            or rule.create_uid
        )

    def _get_activity_deadline(self, template, days):
        """A working day of the company: the template's delay in days counts
        working days from today."""
        if template.delay_unit == "days" and template.delay_from == "after_plan_date":
            return days.first_working_day(days.shift(days.today, template.delay_count))
        return template._get_date_deadline(days.today)

    def _send_template(self, template, res_ids):
        """One mass-mail composer per template: rendered and queued in
        batch, each email in its recipient's language."""
        composer = (
            self.env["mail.compose.message"]
            .with_context(active_test=False)
            .create(
                {
                    "composition_mode": "mass_mail",
                    "model": template.model,
                    "res_ids": str(sorted(res_ids)),
                    "template_id": template.id,
                    # Queued: the cron never waits for the mail server.
                    "force_send": False,
                }
            )
        )
        composer._action_send_mail()

    def _log_in_chatter(self, notes, records):
        """Say on the contact (and on the document) which rule did what."""
        bodies = defaultdict(dict)
        for due, lines in notes.items():
            body = Markup("%s<ul>%s</ul>") % (
                self.env._(
                    "Follow-up rule %(rule)s, step %(step)s:",
                    rule=due.rule.name,
                    step=due.step.name,
                ),
                Markup().join(Markup("<li>%s</li>") % line for line in lines),
            )
            targets = {(due.res_model, due.res_id), ("res.partner", due.partner_id)}
            for model, res_id in targets:
                previous = bodies[model].get(res_id)
                bodies[model][res_id] = previous + body if previous else body
        for model, model_bodies in bodies.items():
            self.env[model].browse(list(model_bodies))._message_log_batch(model_bodies)
