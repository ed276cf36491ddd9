# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""18.0.1.2.0: the welcome discount has a product of its own. The programs
of an existing database get it (the new column was created before the
product was)."""

from odoo import SUPERUSER_ID, api

from odoo.addons.sale_referral_lifecycle.hooks import set_welcome_discount_product


def migrate(cr, version):
    if version:
        set_welcome_discount_product(api.Environment(cr, SUPERUSER_ID, {}))
