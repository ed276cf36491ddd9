# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


def post_init_hook(env):
    """Give every existing company its default referral program."""
    env["res.company"].search([])._create_default_referral_program()
