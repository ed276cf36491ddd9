# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Odoo's import in this addon: the referrals an import held for review are
reported to whoever imports them."""

from odoo import models


class BaseImportImport(models.TransientModel):
    _inherit = "base_import.import"

    def execute_import(self, fields, columns, options, dryrun=False):
        """Referrals held for review by the fraud checks: the dialog's
        *Test* lists them with its results; a real import, which closes the
        dialog on success, says so in a notification that stays until
        closed."""
        result = super().execute_import(fields, columns, options, dryrun=dryrun)
        held = result.pop("referral_held", None)
        if not held:
            return result
        message = self._referral_held_message(held)
        if dryrun:
            # Without a row ("record"): the dialog shows it as it is, a
            # warning, not as a blocking error of one row.
            result["messages"].append({"type": "warning", "message": message})
        else:
            self.env.user._bus_send(
                "simple_notification",
                {
                    "type": "warning",
                    "title": self.env._("Referrals held for review"),
                    "message": message,
                    "sticky": True,
                },
            )
        return result

    def _referral_held_message(self, held):
        rows = "; ".join(
            self.env._("row %(row)s: %(reason)s", row=row, reason=reason)
            for row, reason in held
        )
        return self.env._(
            "%(count)s referral(s) wait for a Sales administrator's review "
            "(Sales > Referrals > To Review), without calls planned until "
            "accepted: %(rows)s",
            count=len(held),
            rows=rows,
        )
