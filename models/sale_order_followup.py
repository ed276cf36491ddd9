# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import pytz

from odoo import fields, models

# Rules woken up when an order reaches a state.
STATE_TRIGGERS = {"sent": "quote_sent", "sale": "order_confirmed"}


# The follow-up hooks of orders stay apart from the credit and referral code
# of sale_order.py: one concern per file.
# pylint: disable=consider-merging-classes-inherited
class SaleOrder(models.Model):
    _inherit = "sale.order"

    def _on_queued_state_change(self, state, moments):
        res = super()._on_queued_state_change(state, moments)
        self._followup_on_state_change(state, moments)
        return res

    def _followup_on_state_change(self, state, moments):
        """Stop conditions of the follow-ups whose source is an order, and
        cron triggers for the steps the new state will make due. Run by the
        lifecycle queue's job after the change (``moments``: {order id: naive
        UTC datetime of the change}), not within the confirmation."""
        Engine = self.env["partner.followup.engine"]
        if state in ("sale", "cancel"):
            Engine._cancel_closed_source_activities(self, state)
        trigger = STATE_TRIGGERS.get(state)
        if not trigger:
            return
        for order in self:
            # The day of the change where the company works.
            company = order.company_id
            tz = pytz.timezone(
                company.resource_calendar_id.tz or company.partner_id.tz or "UTC"
            )
            moment = moments.get(order.id) or fields.Datetime.now()
            day = pytz.utc.localize(moment).astimezone(tz).date()
            Engine._schedule_cron_at_commit(trigger, company, day)
