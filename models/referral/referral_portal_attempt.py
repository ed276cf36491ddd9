# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import timedelta

from odoo import api, fields, models


class ReferralPortalAttempt(models.Model):
    """One referral sent from the portal or a public referral link: the
    daily limits per sponsor and per IP address count these rows, kept in
    the database so that every worker sees the same counts."""

    _name = "referral.portal.attempt"
    _description = "Referral Sent from the Portal"
    _order = "id desc"
    _log_access = False

    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    ip_address = fields.Char(string="IP Address", index=True)
    sponsor_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )

    @api.model
    def _is_over_limit(self, sponsor, ip_address, limit):
        """Whether ``sponsor`` or ``ip_address`` already sent ``limit``
        referrals within the last 24 hours (``limit`` 0: no limit)."""
        if not limit:
            return False
        since = fields.Datetime.now() - timedelta(days=1)
        domain = [("date", ">=", since)]
        by_sponsor = self.search_count(
            domain + [("sponsor_id", "=", sponsor.id)], limit=limit
        )
        by_ip = ip_address and self.search_count(
            domain + [("ip_address", "=", ip_address)], limit=limit
        )
        return by_sponsor >= limit or bool(by_ip and by_ip >= limit)

    @api.model
    def _record(self, sponsor, ip_address):
        return self.create({"sponsor_id": sponsor.id, "ip_address": ip_address})

    @api.autovacuum
    def _gc_old_attempts(self):
        self.search([("date", "<", fields.Datetime.now() - timedelta(days=7))]).unlink()
