# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""A company's time zone and its local day: the one rule every reader uses
(first contacts, referral days, follow-up days and deadlines, order days of
the lifecycle and the KPIs).

The time zone of a company is the one of its working schedule
(``resource_calendar_id``: where its team works), else the one of its
contact, else UTC. Its "today" is the date there now.
"""

import pytz

from odoo import fields
from odoo.tools import SQL


def company_tz_name(company):
    """Name of the time zone ``company`` counts its days in."""
    return company.resource_calendar_id.tz or company.partner_id.tz or "UTC"


def company_tz(company):
    return pytz.timezone(company_tz_name(company))


def company_day(company, moment):
    """The local date, in ``company``, of ``moment`` (a naive UTC datetime,
    as the ORM stores them)."""
    moment = fields.Datetime.to_datetime(moment)
    return pytz.utc.localize(moment).astimezone(company_tz(company)).date()


def company_today(company, now=None):
    """Today in ``company`` (``now``: a naive UTC datetime, default now)."""
    return company_day(company, now or fields.Datetime.now())


def company_tz_sql():
    """SQL of a row source ``(company_id, tz)`` over every company, the time
    zone chosen as ``company_tz_name`` does, for queries that turn UTC
    timestamps into a company's local days."""
    return SQL(
        """
        SELECT rc.id AS company_id,
               COALESCE(NULLIF(cal.tz, ''), NULLIF(cp.tz, ''), 'UTC') AS tz
          FROM res_company rc
          JOIN res_partner cp ON cp.id = rc.partner_id
          LEFT JOIN resource_calendar cal ON cal.id = rc.resource_calendar_id
        """
    )
