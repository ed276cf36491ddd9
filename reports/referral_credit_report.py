# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models, tools
from odoo.tools import SQL


class ReferralCreditReport(models.Model):
    """Referral credit per month and company, one row per credit
    transaction: what sponsors earned, spent and lost to expiry, and what
    remains outstanding (the company's liability to its sponsors).

    A reversal counts against what it reverses (a revoked reward lowers the
    credit earned, a credit note giving credit back lowers the credit
    spent); manual adjustments count as earned (negative when they remove
    credit). So, over any period, earned - spent - expired = outstanding,
    and over all dates outstanding is the sum of the wallet balances."""

    _name = "referral.credit.report"
    _description = "Referral Program KPIs: Credit"
    _auto = False
    _order = "date desc, id desc"
    _rec_name = "transaction_id"
    # Flushed before the view is read.
    _depends = {
        "referral.wallet.transaction": [
            "transaction_type",
            "direction",
            "state",
            "date",
            "amount",
            "signed_amount",
            "wallet_id",
            "partner_id",
            "company_id",
            "referral_id",
            "reversed_transaction_id",
        ],
        "res.partner": ["user_id"],
    }

    date = fields.Date(readonly=True)
    transaction_type = fields.Selection(
        [
            ("credit", "Credit"),
            ("debit", "Debit"),
            ("expiry", "Expiry"),
            ("adjustment", "Adjustment"),
            ("reversal", "Reversal"),
        ],
        string="Type",
        readonly=True,
    )
    earned_amount = fields.Monetary(
        string="Credit Earned",
        readonly=True,
        currency_field="currency_id",
        help="Rewards posted and manual adjustments, less revoked rewards.",
    )
    spent_amount = fields.Monetary(
        string="Credit Spent",
        readonly=True,
        currency_field="currency_id",
        help="Credit spent on orders and invoices, less what credit notes gave "
        "back.",
    )
    expired_amount = fields.Monetary(
        string="Credit Expired",
        readonly=True,
        currency_field="currency_id",
        help="Unused credit removed at its expiry date.",
    )
    outstanding_amount = fields.Monetary(
        string="Credit Outstanding",
        readonly=True,
        currency_field="currency_id",
        help="Earned less spent less expired: over all dates, the credit the "
        "company still owes its sponsors (a liability).",
    )
    pending_amount = fields.Monetary(
        string="Credit Pending Approval",
        readonly=True,
        currency_field="currency_id",
        help="Rewards waiting for a reward approver; not in the other amounts.",
    )
    transaction_id = fields.Many2one(
        "referral.wallet.transaction", string="Transaction", readonly=True
    )
    wallet_id = fields.Many2one("referral.wallet", readonly=True)
    sponsor_id = fields.Many2one("res.partner", string="Sponsor", readonly=True)
    user_id = fields.Many2one(
        "res.users",
        string="Salesperson",
        readonly=True,
        help="Salesperson of the sponsor.",
    )
    referral_id = fields.Many2one("referral.referral", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)

    def _query(self):
        return SQL(
            """
            WITH movement AS (
                SELECT t.*,
                       -- What the movement changes: a reversal counts against
                       -- the kind of transaction it reverses.
                       CASE WHEN t.transaction_type <> 'reversal'
                                THEN t.transaction_type
                            WHEN o.transaction_type
                                 IN ('credit', 'debit', 'expiry', 'adjustment')
                                THEN o.transaction_type
                            WHEN t.direction = 'in' THEN 'debit'
                            ELSE 'credit' END AS kind
                  FROM referral_wallet_transaction t
             LEFT JOIN referral_wallet_transaction o
                    ON o.id = t.reversed_transaction_id
                 WHERE t.state IN ('posted', 'pending')
            )
            SELECT m.id AS id,
                   m.id AS transaction_id,
                   m.date,
                   m.transaction_type,
                   m.wallet_id,
                   m.partner_id AS sponsor_id,
                   sponsor.user_id,
                   m.referral_id,
                   m.company_id,
                   rc.currency_id,
                   CASE WHEN m.state = 'posted'
                             AND m.kind IN ('credit', 'adjustment')
                        THEN m.signed_amount ELSE 0 END AS earned_amount,
                   CASE WHEN m.state = 'posted' AND m.kind = 'debit'
                        THEN -m.signed_amount ELSE 0 END AS spent_amount,
                   CASE WHEN m.state = 'posted' AND m.kind = 'expiry'
                        THEN -m.signed_amount ELSE 0 END AS expired_amount,
                   CASE WHEN m.state = 'posted'
                        THEN m.signed_amount ELSE 0 END AS outstanding_amount,
                   CASE WHEN m.state = 'pending'
                        THEN m.amount ELSE 0 END AS pending_amount
              FROM movement m
              JOIN res_company rc ON rc.id = m.company_id
              JOIN res_partner sponsor ON sponsor.id = m.partner_id
            """
        )

    def init(self):
        tools.drop_view_if_exists(self.env.cr, self._table)
        self.env.cr.execute(
            SQL(
                "CREATE OR REPLACE VIEW %s AS (%s)",
                SQL.identifier(self._table),
                self._query(),
            )
        )
