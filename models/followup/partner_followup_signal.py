# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).


from odoo import api, fields, models

SIGNAL_TYPES = [
    ("quote_viewed", "Quotation viewed online"),
    ("visit", "Portal page visited"),
    ("link_visit", "Referral link visited"),
]
PAGES = [("referrals", "My referrals"), ("wallet", "My wallet")]


class PartnerFollowupSignal(models.Model):
    """A weak signal of a customer, what the *Signal* follow-up rules call
    at the right moment on: the quotation viewed online (Odoo's portal posts
    it on the quotation), a visit of ``/my/referrals`` or ``/my/wallet`` (at
    most one a day per page, with the days away since the previous one), a
    visit of the sponsor's public referral link. Written by the portal only
    (as superuser); a signal wakes the follow-ups within the hour and its
    steps fire once per signal."""

    _name = "partner.followup.signal"
    _description = "Follow-up Signal"
    _order = "date desc, id desc"
    _rec_name = "signal_type"

    signal_type = fields.Selection(SIGNAL_TYPES, required=True, readonly=True)
    page = fields.Selection(PAGES, readonly=True)
    date = fields.Datetime(required=True, readonly=True, index=True)
    days_away = fields.Integer(
        readonly=True,
        help="Portal visits: days since the contact's previous visit of a "
        "referral or wallet page (0: the first one).",
    )
    partner_id = fields.Many2one(
        "res.partner",
        string="Contact",
        required=True,
        readonly=True,
        index=True,
        ondelete="cascade",
        help="The commercial entity that gave the signal (the sponsor for a "
        "visit of its referral link).",
    )
    res_model = fields.Char(string="Document Model", readonly=True)
    res_id = fields.Many2oneReference(
        string="Document ID", model_field="res_model", readonly=True
    )
    company_id = fields.Many2one(
        "res.company", required=True, readonly=True, index=True
    )

    @api.model
    def _record(self, signal_type, partner, company, record=None, page=None):
        """Record a signal of the commercial entity of ``partner`` in
        ``company``, on ``record`` (the contact by default), and wake the
        signal rules' cron within the hour. Visits of a portal page count
        once a day; returns the signal, if recorded."""
        partner = partner.commercial_partner_id
        if not partner:
            return self.browse()
        now = fields.Datetime.now()
        days_away = 0
        if signal_type == "visit":
            visits = [
                ("signal_type", "=", "visit"),
                ("partner_id", "=", partner.id),
                ("company_id", "=", company.id),
            ]
            today = fields.Datetime.to_datetime(now.date())
            if self.search_count(
                [*visits, ("page", "=", page), ("date", ">=", today)], limit=1
            ):
                return self.browse()
            latest = self.search(visits, order="date desc, id desc", limit=1)
            if latest:
                days_away = (now - latest.date).days
        record = record or partner
        signal = self.create(
            {
                "signal_type": signal_type,
                "page": page,
                "date": now,
                "days_away": days_away,
                "partner_id": partner.id,
                "res_model": record._name,
                "res_id": record.id,
                "company_id": company.id,
            }
        )
        self.env["partner.followup.engine"]._schedule_signal_cron()
        return signal
