# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import defaultdict

from odoo import api, fields, models


class SaleOrder(models.Model):
    """Renewals: orders of subscription products for customers who already
    had a subscription (where referral credit may be spent)."""

    # One concern per file (see the class docstring); merged by the ORM.
    _inherit = "sale.order"  # pylint: disable=consider-merging-classes-inherited

    is_renewal = fields.Boolean(
        compute="_compute_is_renewal",
        store=True,
        readonly=False,
        tracking=True,
        copy=False,
        help="The order holds a subscription product and the customer already "
        "bought one: referral credit can be spent on it.",
    )

    @api.depends("order_line.product_id", "partner_id", "company_id")
    def _compute_is_renewal(self):
        """A subscription order is a renewal when its customer (commercial
        entity) already had a subscription in the order's company: a
        subscription order of the same company confirmed before it, or, for a
        quotation, a subscription end date in that company (which a confirmed
        order may have set itself). Another company's subscription never
        makes an order a renewal."""
        subscription_orders = self.filtered(
            lambda o: any(
                line.product_template_id.subscription_months > 0
                for line in o.order_line
            )
        )
        (self - subscription_orders).is_renewal = False
        if not subscription_orders:
            return
        customers = subscription_orders.partner_id.commercial_partner_id
        # sudo: the customer's other orders may belong to other salespeople.
        earlier = defaultdict(list)
        for previous in (
            self.env["sale.order"]
            .sudo()
            .search_fetch(
                [
                    ("state", "=", "sale"),
                    ("order_line.product_template_id.subscription_months", ">", 0),
                    ("partner_id", "child_of", customers.ids),
                    ("company_id", "in", subscription_orders.company_id.ids),
                ],
                ["partner_id", "company_id", "date_order"],
            )
        ):
            key = (previous.partner_id.commercial_partner_id, previous.company_id)
            earlier[key].append(previous)
        for order in subscription_orders:
            customer = order.partner_id.commercial_partner_id
            previous_orders = [
                previous
                for previous in earlier[customer, order.company_id]
                if previous.id != order.id
            ]
            if order.state in ("draft", "sent"):
                # The subscription bought in the order's company only.
                order.is_renewal = bool(
                    previous_orders
                    or customer.with_company(order.company_id).subscription_end_date
                )
            else:
                # Confirmed in the same second: the first created came first.
                order.is_renewal = any(
                    (previous.date_order, previous.id) < (order.date_order, order.id)
                    for previous in previous_orders
                )
