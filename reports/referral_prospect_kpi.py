# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models, tools
from odoo.tools import SQL

from ..models.local_day import company_tz_sql
from .referral_program_kpi import ACQUISITION_CHANNELS

# Referrals whose referee was a real prospect: lost ones count (they did not
# convert), rejected or held ones do not.
PROSPECT_STATES = ("new", "in_progress", "won", "rewarded", "lost")


class ReferralProspectKpi(models.Model):
    """One row per prospect: a commercial entity that a referral named or
    that received a quotation, per company; converted when it reached a
    confirmed order. Grouped by "Referred", it compares the conversion of
    referred prospects with the others."""

    _name = "referral.prospect.kpi"
    _description = "Referral Program KPIs: Prospect Conversion"
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
        ],
        "res.partner": ["commercial_partner_id", "tz"],
        "res.company": ["resource_calendar_id"],
        "resource.calendar": ["tz"],
        "referral.referral": [
            "referee_id",
            "sponsor_id",
            "user_id",
            "company_id",
            "state",
            "date_referral",
        ],
    }

    date = fields.Date(
        string="First Contact",
        readonly=True,
        help="Day of the referral for a referred prospect, else of its first "
        "quotation, in the company's time zone.",
    )
    is_referred = fields.Boolean(
        string="Referred",
        readonly=True,
        help="A referral named the prospect before its first confirmed order.",
    )
    acquisition_channel = fields.Selection(
        ACQUISITION_CHANNELS,
        string="Channel",
        readonly=True,
        help="Referral when a referral named the prospect before its first "
        "confirmed order, else other channels.",
    )
    is_converted = fields.Boolean(string="Converted", readonly=True)
    prospect_count = fields.Integer(string="Prospects", readonly=True, aggregator="sum")
    converted_count = fields.Integer(
        string="Converted Prospects", readonly=True, aggregator="sum"
    )
    conversion_rate = fields.Float(
        string="Conversion Rate (%)",
        readonly=True,
        aggregator="avg",
        help="Share of the prospects that reached a confirmed order.",
    )
    days_to_first_order = fields.Integer(
        string="Days to First Order",
        readonly=True,
        aggregator="avg",
        help="Days from the first contact to the first confirmed order "
        "(converted prospects only).",
    )
    partner_id = fields.Many2one("res.partner", string="Prospect", readonly=True)
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        readonly=True,
        help="Salesperson of the referral, else of the first quotation.",
    )
    referral_id = fields.Many2one("referral.referral", readonly=True)
    sponsor_id = fields.Many2one("res.partner", string="Sponsor", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)

    def _query(self):
        return SQL(
            """
            WITH company_tz AS (
                SELECT company_id AS id, tz FROM (%(company_tz)s) AS ctz
            ), quoted AS (
                SELECT p.commercial_partner_id AS partner_id, so.company_id,
                       min(LEAST(so.create_date, so.date_order)) AS contact_date,
                       (array_agg(so.user_id ORDER BY so.create_date, so.id))[1]
                           AS user_id,
                       min(so.date_order) FILTER (WHERE so.state = 'sale')
                           AS first_order_date
                  FROM sale_order so
                  JOIN res_partner p ON p.id = so.partner_id
              GROUP BY p.commercial_partner_id, so.company_id
            ), referred AS (
                SELECT DISTINCT ON (r.referee_id, r.company_id)
                       r.referee_id AS partner_id, r.company_id, r.id,
                       r.sponsor_id, r.user_id, r.date_referral
                  FROM referral_referral r
                 WHERE r.state IN %(states)s
              ORDER BY r.referee_id, r.company_id, r.date_referral, r.id
            ), prospect AS (
                SELECT COALESCE(q.partner_id, r.partner_id) AS partner_id,
                       COALESCE(q.company_id, r.company_id) AS company_id,
                       q.first_order_date,
                       -- A referral made after the first order did not bring
                       -- the customer.
                       CASE WHEN r.id IS NOT NULL
                             AND (q.first_order_date IS NULL
                                  OR r.date_referral <= q.first_order_date)
                            THEN r.id END AS referral_id,
                       r.sponsor_id, r.user_id AS referral_user_id,
                       r.date_referral, q.user_id AS quotation_user_id,
                       q.contact_date
                  FROM quoted q
             FULL JOIN referred r
                    ON r.partner_id = q.partner_id AND r.company_id = q.company_id
            )
            SELECT row_number() OVER (ORDER BY p.partner_id, p.company_id) AS id,
                   p.partner_id,
                   p.company_id,
                   p.referral_id,
                   CASE WHEN p.referral_id IS NOT NULL THEN p.sponsor_id END
                       AS sponsor_id,
                   CASE WHEN p.referral_id IS NOT NULL THEN p.referral_user_id
                        ELSE p.quotation_user_id END AS user_id,
                   (CASE WHEN p.referral_id IS NOT NULL THEN p.date_referral
                         ELSE p.contact_date END
                       AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date AS date,
                   p.referral_id IS NOT NULL AS is_referred,
                   CASE WHEN p.referral_id IS NULL THEN 'other' ELSE 'referral' END
                       AS acquisition_channel,
                   p.first_order_date IS NOT NULL AS is_converted,
                   1 AS prospect_count,
                   CASE WHEN p.first_order_date IS NULL THEN 0 ELSE 1 END
                       AS converted_count,
                   CASE WHEN p.first_order_date IS NULL THEN 0.0 ELSE 100.0 END
                       AS conversion_rate,
                   GREATEST(
                       (p.first_order_date AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date
                       - (CASE WHEN p.referral_id IS NOT NULL THEN p.date_referral
                               ELSE p.contact_date END
                           AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date,
                       0
                   ) AS days_to_first_order
              FROM prospect p
              JOIN company_tz tz ON tz.id = p.company_id
            """,
            states=PROSPECT_STATES,
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
