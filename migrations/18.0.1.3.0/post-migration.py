# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""18.0.1.3.0: the lifecycle values the engine writes for nearly every
contact (``index=False`` on their fields) lose Odoo's default
``(column IS NOT NULL)`` index of company-dependent fields. Odoo creates
the indexes of new fields but never drops one a field no longer asks for:
they are dropped here, with the addon's own indexes of the subscription end
and the lapse start, which Odoo's default ones of these fields duplicated."""

from odoo import SUPERUSER_ID, api
from odoo.tools import sql

from odoo.addons.sale_referral_lifecycle.models.lifecycle.partner_lifecycle_engine import (  # noqa: E501
    LIFECYCLE_COLUMNS,
)

# The addon's former indexes, duplicates of Odoo's default ones.
FORMER_INDEXES = (
    "res_partner_subscription_end_date_index",
    "res_partner_lifecycle_down_since_index",
)


def drop_unused_lifecycle_indexes(env):
    """Drop the default indexes of the lifecycle columns whose field has
    none, and ``FORMER_INDEXES``: returns the names of those that
    existed."""
    Partner = env["res.partner"]
    names = [
        sql.make_index_name(Partner._table, column)
        for column in LIFECYCLE_COLUMNS
        if not Partner._fields[column].index
    ] + list(FORMER_INDEXES)
    dropped = [name for name in names if sql.index_exists(env.cr, name)]
    for name in dropped:
        sql.drop_index(env.cr, name, Partner._table)
    return dropped


def migrate(cr, version):
    if version:
        drop_unused_lifecycle_indexes(api.Environment(cr, SUPERUSER_ID, {}))
