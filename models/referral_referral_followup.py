# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import models


# Kept out of referral_referral.py: the follow-up side of a new referral.
# pylint: disable=consider-merging-classes-inherited
class ReferralReferral(models.Model):
    _inherit = "referral.referral"

    def _launch_activity_plan(self):
        """The referral's program plan is the default action of the *New
        referral* follow-up rule: launched here as always, then logged for the
        rules whose first step is that plan, so that the cron does not launch
        it again; other *New referral* rules fire with the cron, woken now."""
        activities = super()._launch_activity_plan()
        if self:
            self.env["partner.followup.engine"].sudo()._log_referral_plans(
                self, activities
            )
        return activities
