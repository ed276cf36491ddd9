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
            Engine._cancel_closed_source_activities(self, state)
        if STATE_TRIGGERS.get(state):
            Engine._schedule_cron_at_commit(
                STATE_TRIGGERS[state], self.company_id, fields.Date.context_today(self)
            )
