# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.local_day import company_tz_sql
from ..models.referral.referral_referral import ACCEPTED_STATES

# How a customer or prospect came: the dimension charts group by (a
# selection, so that its bars read in the user's language).
ACQUISITION_CHANNELS = [("referral", "Referral"), ("other", "Other channels")]


class ReferralProgramKpi(models.Model):
    """One row per new customer: a commercial entity's first confirmed
    order in a company. Its month, salesperson and whether a referral
    brought it give the program's headline KPI, the share of new customers
    that came through a referral."""

    _name = "referral.program.kpi"
    _description = "Referral Program KPIs: New Customers"
    _auto = False
    _order = "date desc, id desc"
    _rec_name = "partner_id"
    # Flushed before the view is read.
    _depends = {
        "sale.order": [
            "partner_id",
            "company_id",
            "state",
            "date_order",
            "create_date",
            "user_id",
            "team_id",
            "amount_untaxed",
            "currency_rate",
        ],
        "res.partner": ["commercial_partner_id", "tz"],
        "res.company": ["resource_calendar_id"],
        "resource.calendar": ["tz"],
        "referral.referral": [
            "referee_id",
            "sponsor_id",
            "company_id",
            "state",
            "date_referral",
            "first_order_id",
        ],
        "referral.program": [
            "company_id",
            "active",
            "sequence",
            "target_referral_share",
        ],
    }

    date = fields.Date(
        string="First Order Date",
        readonly=True,
        help="Day of the first confirmed order, in the company's time zone.",
    )
    is_referred = fields.Boolean(
        string="Referred",
        readonly=True,
        help="A referral accepted before (or won by) the first order brought "
        "this customer.",
    )
    acquisition_channel = fields.Selection(
        ACQUISITION_CHANNELS,
        string="Channel",
        readonly=True,
        help="Referral when a referral brought this customer, else other " "channels.",
    )
    customer_count = fields.Integer(
        string="New Customers", readonly=True, aggregator="sum"
    )
    referred_count = fields.Integer(
        string="Referred Customers", readonly=True, aggregator="sum"
    )
    referral_share = fields.Float(
        string="Referral Share (%)",
        readonly=True,
        aggregator="avg",
        help="Share of the new customers that came through a referral.",
    )
    target_referral_share = fields.Float(
        string="Target Share (%)",
        readonly=True,
        aggregator="avg",
        help="Target share of the company's referral program.",
    )
    days_to_first_order = fields.Integer(
        string="Days to First Order",
        readonly=True,
        aggregator="avg",
        help="Days from the first contact (the referral for a referred "
        "customer, else its first quotation) to its first confirmed order.",
    )
    first_order_amount = fields.Monetary(
        string="First Order Untaxed",
        readonly=True,
        currency_field="currency_id",
        help="Untaxed amount of the first order, in the company currency.",
    )
    partner_id = fields.Many2one("res.partner", string="Customer", readonly=True)
    order_id = fields.Many2one("sale.order", string="First Order", readonly=True)
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        readonly=True,
        help="Salesperson of the first order.",
    )
    team_id = fields.Many2one("crm.team", string="Sales Team", readonly=True)
    referral_id = fields.Many2one("referral.referral", readonly=True)
    sponsor_id = fields.Many2one("res.partner", string="Sponsor", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)

    def _query(self):
        return SQL(
            """
            WITH company_tz AS (
                SELECT rc.id, rc.currency_id, ctz.tz
                  FROM (%(company_tz)s) AS ctz
                  JOIN res_company rc ON rc.id = ctz.company_id
            ), first_order AS (
                -- One pass over the orders: per commercial entity and
                -- company, its first confirmed order (confirmed ones sort
                -- first) and its first contact (the earliest quotation).
                SELECT DISTINCT ON (p.commercial_partner_id, so.company_id)
                       so.id, so.company_id, p.commercial_partner_id AS partner_id,
                       so.state, so.date_order, so.user_id, so.team_id,
                       so.amount_untaxed, so.currency_rate,
                       min(LEAST(so.create_date, so.date_order)) OVER (
                           PARTITION BY p.commercial_partner_id, so.company_id
                       ) AS contact_date
                  FROM sale_order so
                  JOIN res_partner p ON p.id = so.partner_id
              ORDER BY p.commercial_partner_id, so.company_id,
                       so.state != 'sale', so.date_order, so.id
            ), program AS (
                -- The program new referrals of the company follow.
                SELECT DISTINCT ON (company_id) company_id, target_referral_share
                  FROM referral_program
                 WHERE active
              ORDER BY company_id, sequence, id
            )
            SELECT fo.id AS id,
                   fo.id AS order_id,
                   fo.partner_id,
                   fo.company_id,
                   tz.currency_id,
                   fo.user_id,
                   fo.team_id,
                   (fo.date_order AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date
                       AS date,
                   ref.id AS referral_id,
                   ref.sponsor_id,
                   ref.id IS NOT NULL AS is_referred,
                   CASE WHEN ref.id IS NULL THEN 'other' ELSE 'referral' END
                       AS acquisition_channel,
                   1 AS customer_count,
                   CASE WHEN ref.id IS NULL THEN 0 ELSE 1 END AS referred_count,
                   CASE WHEN ref.id IS NULL THEN 0.0 ELSE 100.0 END
                       AS referral_share,
                   COALESCE(program.target_referral_share, 0.0)
                       AS target_referral_share,
                   GREATEST(
                       (fo.date_order AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date
                       - (COALESCE(ref.date_referral, fo.contact_date)
                           AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date,
                       0
                   ) AS days_to_first_order,
                   fo.amount_untaxed / COALESCE(NULLIF(fo.currency_rate, 0), 1.0)
                       AS first_order_amount
              FROM first_order fo
              JOIN company_tz tz ON tz.id = fo.company_id
         LEFT JOIN referral_referral ref
                -- The referral that brought the customer: accepted (at most
                -- one per referee and company), made before its first
                -- order or won by it.
                ON ref.referee_id = fo.partner_id
               AND ref.company_id = fo.company_id
               AND ref.state IN %(accepted)s
               AND (ref.first_order_id = fo.id OR ref.date_referral <= fo.date_order)
         LEFT JOIN program ON program.company_id = fo.company_id
             WHERE fo.state = 'sale'
            """,
            accepted=tuple(ACCEPTED_STATES),
            company_tz=company_tz_sql(),
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._query(),
            )
        )
