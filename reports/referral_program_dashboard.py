# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models

# The dashboard reads the last twelve months (the current one included).
DASHBOARD_MONTHS = 12


class ReferralProgram(models.Model):
    """The program's dashboard card: the KPIs a sales manager reads in ten
    seconds, over the last twelve months of the program's company, read
    from the KPI reports (one grouped query per report for all cards)."""

    _inherit = "referral.program"

    kpi_new_customer_count = fields.Integer(
        string="New Customers (12 months)", compute="_compute_kpis"
    )
    kpi_referred_customer_count = fields.Integer(
        string="Referred Customers (12 months)", compute="_compute_kpis"
    )
    kpi_referral_share = fields.Float(
        string="Referral Share (12 months, %)",
        compute="_compute_kpis",
        help="Share of the new customers of the last twelve months that came "
        "through a referral.",
    )
    kpi_referred_conversion = fields.Float(
        string="Referred Prospects Converted (%)", compute="_compute_kpis"
    )
    kpi_other_conversion = fields.Float(
        string="Other Prospects Converted (%)", compute="_compute_kpis"
    )
    kpi_conversion_ratio = fields.Float(
        string="Conversion Ratio",
        compute="_compute_kpis",
        help="How many times better referred prospects convert than the "
        "others (0 when the others did not convert at all).",
    )
    kpi_days_to_first_order = fields.Float(
        string="Days to First Order", compute="_compute_kpis"
    )
    kpi_credit_outstanding = fields.Monetary(
        string="Credit Outstanding",
        compute="_compute_kpis",
        currency_field="currency_id",
        help="Credit the company still owes its sponsors, all dates included.",
    )

    @api.depends("company_id")
    def _compute_kpis(self):
        companies = self.company_id
        since = fields.Date.context_today(self) - relativedelta(
            months=DASHBOARD_MONTHS - 1, day=1
        )
        period = [("company_id", "in", companies.ids), ("date", ">=", since)]
        customers = {
            company: (count, referred, days)
            for company, count, referred, days in self.env[
                "referral.program.kpi"
            ]._read_group(
                period,
                ["company_id"],
                ["customer_count:sum", "referred_count:sum", "days_to_first_order:avg"],
            )
        }
        conversion = {
            (company, referred): rate
            for company, referred, rate in self.env[
                "referral.prospect.kpi"
            ]._read_group(
                period, ["company_id", "is_referred"], ["conversion_rate:avg"]
            )
        }
        outstanding = dict(
            self.env["referral.credit.report"]._read_group(
                [("company_id", "in", companies.ids)],
                ["company_id"],
                ["outstanding_amount:sum"],
            )
        )
        for program in self:
            company = program.company_id
            count, referred, days = customers.get(company, (0, 0, 0.0))
            referred_rate = conversion.get((company, True)) or 0.0
            other_rate = conversion.get((company, False)) or 0.0
            program.kpi_new_customer_count = count
            program.kpi_referred_customer_count = referred
            program.kpi_referral_share = 100.0 * referred / count if count else 0.0
            program.kpi_referred_conversion = referred_rate
            program.kpi_other_conversion = other_rate
            program.kpi_conversion_ratio = (
                referred_rate / other_rate if other_rate else 0.0
            )
            program.kpi_days_to_first_order = days or 0.0
            program.kpi_credit_outstanding = outstanding.get(company, 0.0)

    def _action_open_kpi_report(self, xmlid):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        action["domain"] = [("company_id", "=", self.company_id.id)]
        return action

    def action_open_kpi_customers(self):
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_program_kpi"
        )

    def action_open_kpi_conversion(self):
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_prospect_kpi"
        )

    def action_open_kpi_credit(self):
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_credit_report"
        )
