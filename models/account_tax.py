# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import defaultdict

from odoo import api, models


class AccountTax(models.Model):
    _inherit = "account.tax"

    @api.model
    def _referral_discountable_per_tax(self, base_lines, company):
        """(discountable, {taxes: amount}) of ``base_lines`` (orders' or
        invoices'), the way sale_loyalty computes an order's discountable:
        the untaxed amount per group of non-fixed taxes (price-included
        taxes kept in), and their total taxes included."""
        for base_line in base_lines:
            base_line["referral_taxes"] = (
                base_line["tax_ids"]
                .flatten_taxes_hierarchy()
                .filtered(lambda t: t.amount_type != "fixed")
            )
        self._add_tax_details_in_base_lines(base_lines, company)
        self._round_base_lines_tax_details(base_lines, company)

        def grouping_function(base_line, tax_data):
            return {
                "taxes": base_line["referral_taxes"],
                "skip": tax_data["tax"] not in base_line["referral_taxes"],
            }

        values_per_key = self._aggregate_base_lines_aggregated_values(
            self._aggregate_base_lines_tax_details(base_lines, grouping_function)
        )
        discountable = 0.0
        per_tax = defaultdict(float)
        for key, values in values_per_key.items():
            if key and key["skip"]:
                continue
            taxes = key["taxes"] if key else self.browse()
            discountable += (
                values["raw_base_amount_currency"] + values["raw_tax_amount_currency"]
            )
            per_tax[taxes] += values["raw_base_amount_currency"] + sum(
                tax_data["raw_tax_amount_currency"]
                for _base_line, taxes_data in values["base_line_x_taxes_data"]
                for tax_data in taxes_data
                if tax_data["tax"].price_include
            )
        return discountable, per_tax
