# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class PartnerLifecycleHistory(models.Model):
    _name = "partner.lifecycle.history"
    _description = "Customer Lifecycle Stage Change"
    _order = "date desc, id desc"
    # A row is written once, with its own date and user: the four log columns
    # (and two foreign keys checked on each of the many rows a full
    # recompute inserts) would repeat them.
    _log_access = False

    partner_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )
    from_stage_id = fields.Many2one("partner.lifecycle.stage", ondelete="set null")
    to_stage_id = fields.Many2one(
        "partner.lifecycle.stage",
        required=True,
        index=True,
        ondelete="cascade",
    )
    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    automatic = fields.Boolean(
        help="Moved by the stage criteria; unticked when a user moved it."
    )
    user_id = fields.Many2one(
        "res.users", string="Moved by", default=lambda self: self.env.user
    )
    # The contact's first contact source in the company of the row (its
    # stage and first contact are per company): written with the row.
    first_contact_source_id = fields.Many2one("utm.source", string="Channel")
    company_id = fields.Many2one(
        "res.company",
        index=True,
        default=lambda self: self.env.company,
        help="The company whose stage of the contact moved.",
    )
