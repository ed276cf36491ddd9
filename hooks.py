# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from .models.partner_lifecycle_engine import COMMERCIAL_ENTITY_DOMAIN


def post_init_hook(env):
    """Give every existing company its default referral program and every
    existing customer its lifecycle stage."""
    env["res.company"].search([])._create_default_referral_program()
    # Batches of commercial entities (subsidiaries included): memory stays
    # flat whatever the number of contacts.
    env["partner.lifecycle.engine"]._recompute_in_batches(
        env["res.partner"]
        .with_context(active_test=False)
        .search(COMMERCIAL_ENTITY_DOMAIN, order="id")
        .ids
    )
