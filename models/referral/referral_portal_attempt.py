# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import timedelta

from odoo import api, fields, models
from odoo.tools import SQL
from odoo.tools.misc import hmac

# Scope of the keyed hash of the senders' IP addresses (with the database
# secret as key): the same address gives the same hash in this database only.
IP_HASH_SCOPE = "sale_referral_lifecycle.portal_attempt_ip"
# Days the rows are kept when no program says otherwise.
DEFAULT_RETENTION_DAYS = 30

REFUSALS = [
    ("ineligible", "The sponsor may not sponsor"),
    ("own_company", "The sponsor's own company"),
    ("cycle", "A sponsor of the sponsor"),
    ("already_referred", "Already referred"),
    ("customer", "Already a customer"),
    ("not_recorded", "Details refused by the referral rules"),
]


class ReferralPortalAttempt(models.Model):
    """One referral sent from the portal or a public referral link, with its
    outcome. The daily limits per sponsor and per sender count these rows,
    kept in the database so that every worker sees the same counts; the
    sender's IP address is kept as a keyed hash, never in clear. A refused
    link referral writes no referral: this row is its record, told to the
    sponsor and its salesperson. Rows older than the program's retention
    are deleted every day."""

    _name = "referral.portal.attempt"
    _description = "Referral Sent from the Portal"
    _order = "id desc"
    _log_access = False

    date = fields.Datetime(required=True, default=fields.Datetime.now, index=True)
    ip_hash = fields.Char(
        string="Sender (Hashed)",
        size=64,
        index=True,
        help="Keyed hash of the sender's IP address: the daily limit per "
        "address is counted without keeping the address.",
    )
    sponsor_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )
    program_id = fields.Many2one(
        "referral.program", index="btree_not_null", ondelete="cascade"
    )
    source = fields.Selection(
        [("portal", "Portal"), ("code", "Referral link")],
        required=True,
        default="portal",
    )
    outcome = fields.Selection(
        [
            ("accepted", "Accepted"),
            ("review", "Held for review"),
            ("refused", "Refused"),
        ],
        required=True,
        default="accepted",
    )
    refusal = fields.Selection(REFUSALS, string="Refusal Reason")
    referral_id = fields.Many2one(
        "referral.referral", index="btree_not_null", ondelete="set null"
    )
    referee_company_name = fields.Char(string="Referred Company", size=128)

    @api.model
    def _hash_ip(self, ip_address):
        """The keyed hash (HMAC-SHA256, the database secret as key) the rows
        keep of ``ip_address``."""
        if not ip_address:
            return False
        return hmac(self.env(su=True), IP_HASH_SCOPE, ip_address)

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
        ip_hash = self._hash_ip(ip_address)
        by_ip = ip_hash and self.search_count(
            domain + [("ip_hash", "=", ip_hash)], limit=limit
        )
        return by_sponsor >= limit or bool(by_ip and by_ip >= limit)

    @api.model
    def _record(self, sponsor, ip_address, **values):
        """Record a referral sent by ``ip_address`` for ``sponsor``;
        ``values``: its program, source, outcome, refusal, referral..."""
        return self.create(
            dict(values, sponsor_id=sponsor.id, ip_hash=self._hash_ip(ip_address))
        )

    def _notify_refused(self):
        """Tell the sponsor and its salesperson that the referral sent
        through the sponsor's link was refused, and why (queued emails: the
        visitor who sent it is never told)."""
        for xmlid in (
            "sale_referral_lifecycle.mail_template_referral_link_refused",
            "sale_referral_lifecycle.mail_template_referral_link_refused_salesperson",
        ):
            template = self.env.ref(xmlid, raise_if_not_found=False)
            if not template:
                continue
            for attempt in self:
                if xmlid.endswith("_salesperson") and not attempt.sponsor_id.user_id:
                    continue
                template.sudo().send_mail(attempt.id, force_send=False)

    @api.autovacuum
    def _gc_old_attempts(self):
        """Delete the rows older than their program's retention (30 days
        without program): one statement."""
        now = fields.Datetime.now()
        self.env["referral.program"].flush_model(["portal_log_retention_days"])
        self.flush_model(["date", "program_id"])
        self.env.execute_query(
            SQL(
                """
                DELETE FROM referral_portal_attempt a
                 WHERE a.date < %s - make_interval(days => COALESCE(
                           (SELECT GREATEST(p.portal_log_retention_days, 1)
                              FROM referral_program p
                             WHERE p.id = a.program_id),
                           %s))
                """,
                now,
                DEFAULT_RETENTION_DAYS,
            )
        )
        self.invalidate_model()
