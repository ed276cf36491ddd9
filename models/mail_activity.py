# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class MailActivity(models.Model):
    _inherit = "mail.activity"

    followup_log_id = fields.Many2one(
        "partner.followup.log",
        string="Follow-up",
        index="btree_not_null",
        ondelete="set null",
        readonly=True,
        help="The follow-up step that scheduled this activity.",
    )
