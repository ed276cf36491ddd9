# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models


class ReferralProgram(models.Model):
    """Program settings of the customer portal, the public referral link and
    the fraud checks."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "referral.program"  # pylint: disable=consider-merging-classes-inherited

    portal_enabled = fields.Boolean(
        string="Portal Referrals",
        default=True,
        help="Customers see a Referrals entry in their portal, refer companies "
        "from it and share their public referral link.",
    )
    portal_consent_text = fields.Char(
        string="Consent Wording",
        translate=True,
        default="I have my contact's agreement to be contacted",
        help="Checkbox the sponsor (or the visitor of a referral link) ticks "
        "before sending a referral.",
    )
    portal_daily_limit = fields.Integer(
        string="Daily Limit per Sponsor and per IP",
        default=10,
        help="Most referrals sent from the portal or a referral link per day, "
        "per sponsor and per IP address. 0 means no limit.",
    )
    fraud_burst_limit = fields.Integer(
        string="Referrals per Hour before Review",
        default=5,
        help="A referral beyond this number from one sponsor within an hour "
        "waits for a review. 0 disables the check.",
    )
