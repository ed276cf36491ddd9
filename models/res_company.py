# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models


class ResCompany(models.Model):
    _inherit = "res.company"

    followup_min_gap_days = fields.Integer(
        string="Follow-up Gap (working days)",
        default=2,
        help="A contact gets at most one automated follow-up per this many "
        "working days: lower priority steps wait, they are not lost. 0: no gap.",
    )

    lifecycle_move_back = fields.Selection(
        [
            ("automatic", "Move back automatically"),
            ("forward_only", "Only forward"),
        ],
        string="Lifecycle Stages Move Back",
        default="automatic",
        required=True,
        help="Move back automatically: a contact whose criteria lapse moves "
        "down once the stage's days before moving down have passed. Only "
        "forward: contacts move up by themselves and down only by hand.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        companies = super().create(vals_list)
        companies._create_default_referral_program()
        return companies

    def write(self, vals):
        res = super().write(vals)
        if "lifecycle_move_back" in vals:
            # Moves down wait, happen or stop: every contact is placed again.
            self.env["partner.lifecycle.stage"]._schedule_lifecycle_recompute()
        return res

    def _prepare_default_referral_program_values(self):
        self.ensure_one()
        plan = self.env.ref(
            "sale_referral_lifecycle.mail_activity_plan_referral",
            raise_if_not_found=False,
        )
        return {
            "name": self.env._("Customer referrals"),
            "company_id": self.id,
            "activity_plan_id": plan.id if plan else False,
        }

    def _create_default_referral_program(self):
        """Create the default program of the companies that have none."""
        Program = self.env["referral.program"].sudo().with_context(active_test=False)
        with_program = set(
            Program.search([("company_id", "in", self.ids)]).company_id.ids
        )
        vals_list = [
            company._prepare_default_referral_program_values()
            for company in self
            if company.id not in with_program
        ]
        return Program.create(vals_list)
