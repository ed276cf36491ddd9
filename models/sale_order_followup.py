# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models

# Rules woken up when an order reaches a state.
STATE_TRIGGERS = {"sent": "quote_sent", "sale": "order_confirmed"}


# The follow-up hooks of orders stay apart from the credit and referral code
# of sale_order.py: one concern per file.
# pylint: disable=consider-merging-classes-inherited
class SaleOrder(models.Model):
    _inherit = "sale.order"

    def write(self, vals):
        res = super().write(vals)
        if vals.get("state"):
            self._followup_on_state_change(vals["state"])
        return res

    def _followup_on_state_change(self, state):
        """Stop conditions of the follow-ups whose source is an order, and
        cron triggers for the steps the new state will make due."""
        Engine = self.env["partner.followup.engine"]
        if state in ("sale", "cancel"):
            Engine._cancel_followup_activities(
                self,
                ["quote_sent"],
                self.env._("the quotation was confirmed or cancelled."),
            )
        if state == "cancel":
            Engine._cancel_followup_activities(
                self, ["order_confirmed"], self.env._("the order was cancelled.")
            )
        if state == "sale":
            # A renewal moved the subscription end: the steps of the previous
            # end date are pointless.
            Engine._cancel_followup_activities(
                self.partner_id.commercial_partner_id,
                ["subscription_end"],
                self.env._("the subscription was renewed."),
                keep=lambda log: log.occurrence
                == str(
                    self.env["res.partner"].browse(log.res_id).subscription_end_date
                ),
            )
        trigger = STATE_TRIGGERS.get(state)
        if not trigger:
            return
        # sudo: any salesperson's order wakes the rules admins set up.
        Rule = self.env["partner.followup.rule"].sudo()
        for company in self.company_id:
            rules = Rule.search(
                [
                    ("trigger", "=", trigger),
                    ("company_id", "in", (False, company.id)),
                ]
            )
            Engine.sudo()._schedule_cron(
                rules, company, fields.Date.context_today(self)
            )
