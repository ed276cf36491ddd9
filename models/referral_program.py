# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


class ReferralProgram(models.Model):
    _name = "referral.program"
    _inherit = ["mail.thread"]
    _description = "Referral Program"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(
        default=10,
        help="When a company has several active programs, new referrals use "
        "the first one.",
    )
    sponsor_policy = fields.Selection(
        [
            ("customer", "Customers only"),
            ("stages", "Contacts in given lifecycle stages"),
            ("any", "Any contact"),
        ],
        string="Who May Sponsor",
        default="customer",
        required=True,
        tracking=True,
        help="Customers only: the sponsor needs at least one confirmed sales "
        "order in the company. Lifecycle stages: the sponsor's stage must be "
        "one of the stages set. Any contact: every active contact may refer.",
    )
    sponsor_stage_ids = fields.Many2many(
        "partner.lifecycle.stage",
        string="Sponsor Stages",
        help="Lifecycle stages whose contacts may sponsor.",
    )
    allow_customer_referee = fields.Boolean(
        string="Accept Existing Customers as Referees",
        tracking=True,
        help="By default a company that already has a confirmed sales order "
        "cannot be referred: it is not new business.",
    )
    activity_plan_id = fields.Many2one(
        "mail.activity.plan",
        domain="[('res_model', '=', 'referral.referral'), "
        "'|', ('company_id', '=', False), ('company_id', '=', company_id)]",
        check_company=True,
        help="Activities scheduled on every new referral, due on the "
        "company's working days.",
    )
    referral_count = fields.Integer(compute="_compute_referral_count")
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )

    @api.depends("company_id")
    def _compute_referral_count(self):
        counts = dict(
            self.env["referral.referral"]._read_group(
                [("program_id", "in", self.ids)], ["program_id"], ["__count"]
            )
        )
        for program in self:
            program.referral_count = counts.get(program, 0)

    def action_view_referrals(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        action["domain"] = [("program_id", "=", self.id)]
        action["context"] = {"default_program_id": self.id}
        return action

    @api.model
    def _get_company_program(self, company):
        """Return the program new referrals of ``company`` follow."""
        return self.search([("company_id", "=", company.id)], limit=1)

    def _is_sponsor_eligible(self, partner):
        """Return whether the commercial entity ``partner`` may sponsor."""
        self.ensure_one()
        if self.sponsor_policy == "any":
            return True
        if self.sponsor_policy == "stages":
            return partner.lifecycle_stage_id in self.sponsor_stage_ids
        return bool(
            self.env["sale.order"]
            .sudo()
            .search_count(
                [
                    ("partner_id", "child_of", partner.ids),
                    ("company_id", "=", self.company_id.id),
                    ("state", "=", "sale"),
                ],
                limit=1,
            )
        )
