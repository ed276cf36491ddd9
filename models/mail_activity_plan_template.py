# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class MailActivityPlanTemplate(models.Model):
    _inherit = "mail.activity.plan.template"

    responsible_type = fields.Selection(
        selection_add=[
            ("sponsor_salesperson", "Sponsor's salesperson"),
            ("partner_salesperson", "Contact's salesperson"),
        ],
        ondelete={
            "sponsor_salesperson": "set default",
            "partner_salesperson": "set default",
        },
    )

    def _determine_responsible(self, on_demand_responsible, applied_on_record):
        if self.responsible_type not in ("sponsor_salesperson", "partner_salesperson"):
            return super()._determine_responsible(
                on_demand_responsible, applied_on_record
            )
        responsible = self._get_salesperson(applied_on_record)
        error = False
        if not responsible:
            error = self.env._(
                "No salesperson found on %(record)s for %(activity)s: set "
                "one on the contact or choose another assignment.",
                record=applied_on_record.display_name,
                activity=self.summary or self.activity_type_id.name,
            )
        return {"responsible": responsible, "error": error}

    def _prepare_scheduled_activity_values(self, record, responsible, days):
        """Values of the activity this template schedules on ``record`` for
        ``responsible``, due on the working days of ``days``. An empty
        summary or note is the activity type's, in the responsible's
        language."""
        self.ensure_one()
        activity_type = self.activity_type_id.with_context(
            lang=responsible.lang or self.env.lang
        )
        return {
            "res_id": record.id,
            "activity_type_id": activity_type.id,
            "summary": self.summary or activity_type.summary,
            "note": self.note or activity_type.default_note,
            "user_id": responsible.id,
            "date_deadline": days.deadline(self),
            "automated": True,
        }

    def _get_salesperson(self, record):
        """Salesperson the template's responsible type designates on
        ``record``: a referral, a contact or a document with a customer."""
        self.ensure_one()
        if record._name == "referral.referral":
            if self.responsible_type == "sponsor_salesperson":
                return record.user_id
            return record.referee_id.user_id or record.user_id
        if record._name == "res.partner":
            partner = record.commercial_partner_id
        elif "partner_id" in record._fields:
            partner = record.partner_id.commercial_partner_id
        else:
            return self.env["res.users"]
        if self.responsible_type == "sponsor_salesperson":
            return partner.sponsor_id.user_id
        return partner.user_id
