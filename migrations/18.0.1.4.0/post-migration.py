# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""18.0.1.4.0: a salesperson who sees the follow-ups of their own contacts
also sees the log rows of the activities they got (a quotation's own
salesperson, the contact's being someone else). The record rule is
``noupdate``: its domain is changed here, unless an admin edited it."""

from odoo import SUPERUSER_ID, api

RULE = "sale_referral_lifecycle.partner_followup_log_personal_rule"
OLD_DOMAIN = "['|', ('user_id', '=', user.id), ('partner_id.user_id', '=', user.id)]"
NEW_DOMAIN = (
    "['|', '|', ('user_id', '=', user.id), ('responsible_id', '=', user.id), "
    "('partner_id.user_id', '=', user.id)]"
)


def migrate(cr, version):
    if not version:
        return
    env = api.Environment(cr, SUPERUSER_ID, {})
    rule = env.ref(RULE, raise_if_not_found=False)
    if rule and rule.domain_force.strip() == OLD_DOMAIN:
        rule.domain_force = NEW_DOMAIN
