# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


def post_init_hook(env):
    """Give every existing company its default referral program and every
    existing customer its lifecycle stage."""
    env["res.company"].search([])._create_default_referral_program()
    env["res.partner"].with_context(active_test=False).search(
        [("parent_id", "=", False)]
    )._lifecycle_recompute()
