# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Tracked changes in the chatter: the selections of this addon's models read
in the reader's language."""

from odoo import models

MODULE = "sale_referral_lifecycle"


class MailTrackingValue(models.Model):
    _inherit = "mail.tracking.value"

    def _format_display_value(self, field_type, new=True):
        """A selection is tracked as its label in the language of whoever
        changed it (often the scheduled jobs' user: a referral won or
        rewarded by the queue's job). For the selections of this addon's
        models, the label is found back among the labels of the active
        languages and shown in the reader's language, as Odoo shows the
        field's name ("New → In Progress (Status)")."""
        values = super()._format_display_value(field_type, new=new)
        if field_type != "selection":
            return values
        labels = {}
        translated = []
        for tracking, value in zip(self, values, strict=True):
            field = tracking.field_id
            if value and field and MODULE in (field.modules or "").split(", "):
                if field not in labels:
                    labels[field] = self._referral_selection_labels(field)
                value = labels[field].get(value, value)
            translated.append(value)
        return translated

    def _referral_selection_labels(self, field):
        """{label in any active language: label in the reader's language}
        of the selection ``field`` (an ``ir.model.fields``)."""
        model_field = self.env[field.model]._fields.get(field.name)
        if model_field is None or model_field.type != "selection":
            return {}
        current = dict(model_field._description_selection(self.env))
        labels = {}
        for code, _name in self.env["res.lang"].get_installed():
            env = self.env(context=dict(self.env.context, lang=code))
            for key, label in model_field._description_selection(env):
                labels.setdefault(label, current.get(key, label))
        return labels
