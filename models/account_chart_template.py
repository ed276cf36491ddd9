# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import models


class AccountChartTemplate(models.AbstractModel):
    _inherit = "account.chart.template"

    def _load(self, template_code, company, install_demo, force_create=True):
        res = super()._load(template_code, company, install_demo, force_create)
        # A company given a chart books its referral credit from now on.
        self.env["referral.program"].sudo().with_context(active_test=False).search(
            [("company_id", "=", company.id), ("accounting_enabled", "=", False)]
        )._setup_referral_accounting()
        return res
