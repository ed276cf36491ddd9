# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import Command, api, fields, models
from odoo.exceptions import UserError


class SaleOrder(models.Model):
    """The referee's welcome discount: applied on its quotations, kept by its
    first confirmed order only."""

    # One concern per file (see the class docstring); merged by the ORM.
    _inherit = "sale.order"  # pylint: disable=consider-merging-classes-inherited

    referral_welcome_discount_available = fields.Boolean(
        compute="_compute_referral_welcome_discount_available"
    )

    @api.depends("partner_id", "company_id", "state", "order_line")
    def _compute_referral_welcome_discount_available(self):
        referred = self._referred_orders()
        for order in self:
            program = order._get_referral_program()
            order.referral_welcome_discount_available = bool(
                order in referred
                and order.state in ("draft", "sent")
                and program.referee_discount_percent
                and not order.order_line.filtered("is_referral_welcome_discount")
            )

    def action_apply_referral_welcome_discount(self):
        """Give the referred customer its welcome discount, once."""
        for order in self:
            order._apply_referral_welcome_discount()
        return True

    def _check_referral_welcome_discounts(self):
        """Only the referee's first confirmed order keeps the welcome
        discount: the other orders confirmed lose it, with a message."""
        orders = self.filtered(
            lambda o: o.order_line.filtered("is_referral_welcome_discount")
        )
        first = set()
        for order in orders.sorted(lambda o: (o.date_order, o.id)):
            key = (order.partner_id.commercial_partner_id, order.company_id)
            if key not in first and not order._referral_customer_has_ordered():
                first.add(key)
                continue
            lines = order.order_line.filtered("is_referral_welcome_discount")
            order.with_context(referral_skip_auto_apply=True).write(
                {"order_line": [Command.unlink(line.id) for line in lines]}
            )
            order.message_post(
                body=self.env._(
                    "The welcome discount was removed: it is for the first "
                    "order of a referred customer, and %(customer)s has "
                    "already ordered.",
                    customer=order.partner_id.commercial_partner_id.display_name,
                )
            )

    def _apply_referral_welcome_discount(self, raise_if_nothing=True):
        self.ensure_one()
        program = self._get_referral_program()
        if not self.referral_welcome_discount_available:
            if raise_if_nothing:
                raise UserError(
                    self.env._(
                        "%(order)s gets no welcome discount: it must be a quotation "
                        "of a referred customer, in a program with a welcome "
                        "discount, and the discount is given once.",
                        order=self.name,
                    )
                )
            return
        if self._referral_customer_has_ordered():
            if raise_if_nothing:
                raise UserError(
                    self.env._(
                        "The welcome discount is for the first order of a referred "
                        "customer; %(customer)s has already ordered.",
                        customer=self.partner_id.commercial_partner_id.display_name,
                    )
                )
            return
        lines = self.order_line.filtered(lambda line: not line._is_referral_line())
        if not lines or not program.credit_product_id:
            return
        vals_list = self._prepare_referral_discount_lines_values(
            program,
            lines,
            program.referee_discount_percent / 100,
            is_referral_welcome_discount=True,
            name=self.env._(
                "Welcome discount (%(percent)s%%)",
                # Not an f-string: the translation extractor evaluates those.
                percent=format(program.referee_discount_percent, "g"),
            ),
        )
        self.with_context(referral_skip_auto_apply=True).write(
            {"order_line": [Command.create(v) for v in vals_list]}
        )

    def _referral_customer_has_ordered(self):
        self.ensure_one()
        return bool(
            self.sudo().search_count(
                [
                    (
                        "partner_id",
                        "child_of",
                        self.partner_id.commercial_partner_id.id,
                    ),
                    ("company_id", "=", self.company_id.id),
                    ("state", "=", "sale"),
                    ("id", "!=", self.id),
                ],
                limit=1,
            )
        )
