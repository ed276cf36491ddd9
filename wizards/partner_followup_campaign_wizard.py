# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import UserError


class PartnerFollowupCampaignWizard(models.TransientModel):
    _name = "partner.followup.campaign.wizard"
    _description = "Launch a Follow-up Campaign"

    name = fields.Char(
        string="Campaign",
        required=True,
        help="Names this occurrence of the rule: the same contacts can be "
        "invited again by another campaign, not twice by this one.",
    )
    rule_id = fields.Many2one(
        "partner.followup.rule",
        required=True,
        domain="[('trigger', '=', 'campaign'), "
        "('company_id', 'in', (False, company_id))]",
    )
    company_id = fields.Many2one(
        "res.company", required=True, default=lambda self: self.env.company
    )
    partner_ids = fields.Many2many(
        "res.partner",
        string="Contacts",
        required=True,
        help="Their commercial entities are followed up.",
    )

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        if (
            "partner_ids" in fields_list
            and self.env.context.get("active_model") == "res.partner"
        ):
            values["partner_ids"] = [(6, 0, self.env.context.get("active_ids", []))]
        if "rule_id" in fields_list and not values.get("rule_id"):
            rule = self.env["partner.followup.rule"].search(
                [
                    ("trigger", "=", "campaign"),
                    ("company_id", "in", (False, self.env.company.id)),
                ],
                limit=1,
            )
            values["rule_id"] = rule.id
        return values

    @api.onchange("rule_id")
    def _onchange_rule_id(self):
        if self.rule_id and not self.name:
            self.name = self.env._(
                "%(rule)s %(date)s",
                rule=self.rule_id.name,
                date=fields.Date.to_string(fields.Date.context_today(self)),
            )

    def action_launch(self):
        """The rule's first step now for the selected contacts (the gap and
        blocked contacts apply), the next ones with the cron."""
        self.ensure_one()
        if not self.rule_id._get_steps():
            raise UserError(
                self.env._(
                    "The rule %(rule)s has no step: add one before launching it.",
                    rule=self.rule_id.name,
                )
            )
        # sudo: the engine logs the campaign and assigns activities to the
        # contacts' salespeople, whoever launches it.
        stats = (
            self.env["partner.followup.engine"]
            .with_company(self.company_id)
            .sudo()
            ._launch_campaign(
                self.rule_id.sudo(),
                self.partner_ids.commercial_partner_id,
                self.name,
            )
        )
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "type": "success",
                "message": self.env._(
                    "%(done)s contacts followed up, %(postponed)s postponed, "
                    "%(skipped)s skipped.",
                    done=stats.get("done", 0),
                    postponed=stats.get("postponed", 0),
                    skipped=stats.get("skipped", 0),
                ),
                "next": {"type": "ir.actions.act_window_close"},
            },
        }
