# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class MailActivityPlan(models.Model):
    """Plan names in the user's language: the addon's plans ("New referral",
    the follow-up plans) are shown to salespeople in the schedule wizard and
    on the follow-up rules. Odoo 18 stores the name as plain text; as a
    translated field its column becomes jsonb, which Odoo converts back (to
    the English text) if the addon is uninstalled."""

    _inherit = "mail.activity.plan"

    name = fields.Char(translate=True)
