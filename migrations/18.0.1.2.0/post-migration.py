# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""18.0.1.2.0:

- the portal log keeps the senders' IP addresses as keyed hashes
  (``referral.portal.attempt.ip_hash``), no longer in clear: the rows of the
  former column ``ip_address`` get their hash, then the column and its
  addresses are dropped. Rows older than the retention are deleted by the
  nightly clean-up;
- the welcome discount has a product of its own: the programs of an
  existing database get it (the new column was created before the product
  was).
"""

from odoo import SUPERUSER_ID, api
from odoo.tools import SQL, sql

from odoo.addons.sale_referral_lifecycle.hooks import set_welcome_discount_product


def hash_clear_ip_addresses(env):
    cr = env.cr
    if not sql.column_exists(cr, "referral_portal_attempt", "ip_address"):
        return
    cr.execute(
        "SELECT DISTINCT ip_address FROM referral_portal_attempt "
        "WHERE ip_address IS NOT NULL"
    )
    Attempt = env["referral.portal.attempt"]
    addresses = [row[0] for row in cr.fetchall()]
    if addresses:
        env.execute_query(
            SQL(
                """
                UPDATE referral_portal_attempt a SET ip_hash = v.ip_hash
                  FROM unnest(%s::varchar[], %s::varchar[]) AS v(ip_address, ip_hash)
                 WHERE a.ip_address = v.ip_address
                """,
                addresses,
                [Attempt._hash_ip(address) for address in addresses],
            )
        )
    cr.execute("ALTER TABLE referral_portal_attempt DROP COLUMN ip_address")


def migrate(cr, version):
    if version:
        env = api.Environment(cr, SUPERUSER_ID, {})
        hash_clear_ip_addresses(env)
        set_welcome_discount_product(env)
