# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class SaleReport(models.Model):
    _inherit = "sale.report"

    lifecycle_stage_id = fields.Many2one(
        "partner.lifecycle.stage",
        string="Customer Lifecycle Stage",
        readonly=True,
    )

    def _select_additional_fields(self):
        res = super()._select_additional_fields()
        # The current stage of the order's customer (its commercial entity)
        # in the order's company (the stage is company-dependent).
        res["lifecycle_stage_id"] = (
            "(SELECT (cp.lifecycle_stage_id->>s.company_id::text)::int "
            "FROM res_partner cp WHERE cp.id = partner.commercial_partner_id)"
        )
        return res
