# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import ValidationError


class ProductTemplate(models.Model):
    _inherit = "product.template"

    subscription_months = fields.Integer(
        help="More than 0 makes this a subscription product: a confirmed order "
        "of it extends the customer's subscription by this many months.",
    )

    @api.constrains("subscription_months")
    def _check_subscription_months(self):
        if any(product.subscription_months < 0 for product in self):
            raise ValidationError(
                self.env._("The subscription duration cannot be negative.")
            )
