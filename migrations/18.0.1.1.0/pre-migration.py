# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""18.0.1.1.0: the lifecycle of a contact is per company. Before Odoo
updates the schema (it cannot cast an integer or a date column to jsonb),
the plain lifecycle columns become jsonb keyed by the contact's company."""

from odoo.addons.sale_referral_lifecycle.hooks import (
    migrate_lifecycle_columns_to_company,
)


def migrate(cr, version):
    if version:
        migrate_lifecycle_columns_to_company(cr)
