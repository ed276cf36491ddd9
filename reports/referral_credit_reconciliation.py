# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import fields, models, tools
from odoo.tools import SQL


class ReferralCreditReconciliation(models.Model):
    """The books against the wallets, one line per sponsor and company whose
    accounting of referral credit is on: the balance of the credit
    liability account for the sponsor (credit minus debit, posted entries)
    against what the company owes it, its wallet balance plus the credit
    held by its confirmed orders not invoiced yet. The difference is zero
    while every movement goes through the ledger and the credit lines; an
    entry made by hand on the liability account shows up here."""

    _name = "referral.credit.reconciliation"
    _description = "Referral Credit Reconciliation"
    _auto = False
    _order = "company_id, difference desc, partner_id"
    _rec_name = "partner_id"
    # Flushed before the view is read.
    _depends = {
        "referral.wallet.transaction": [
            "state",
            "signed_amount",
            "wallet_id",
            "sale_order_id",
            "invoice_id",
        ],
        "referral.wallet": ["partner_id", "company_id"],
        "referral.program": ["company_id", "credit_liability_account_id"],
        "account.move.line": [
            "account_id",
            "partner_id",
            "company_id",
            "parent_state",
            "balance",
        ],
    }

    partner_id = fields.Many2one("res.partner", string="Sponsor", readonly=True)
    company_id = fields.Many2one("res.company", readonly=True)
    currency_id = fields.Many2one("res.currency", readonly=True)
    liability_amount = fields.Monetary(
        string="Liability in the Books",
        readonly=True,
        currency_field="currency_id",
        help="Balance of the credit liability account for the sponsor "
        "(credit minus debit of the posted entries).",
    )
    wallet_balance = fields.Monetary(
        readonly=True,
        currency_field="currency_id",
        help="Sum of the wallet's posted transactions.",
    )
    order_credit_amount = fields.Monetary(
        string="Credit on Orders Not Invoiced",
        readonly=True,
        currency_field="currency_id",
        help="Credit spent by confirmed orders and not carried by posted "
        "invoices yet: still owed until invoiced.",
    )
    owed_amount = fields.Monetary(
        string="Credit Owed",
        readonly=True,
        currency_field="currency_id",
        help="Wallet balance plus the credit on orders not invoiced.",
    )
    difference = fields.Monetary(
        readonly=True,
        currency_field="currency_id",
        help="Liability in the books less the credit owed: zero when the books "
        "and the wallets agree.",
    )

    def _query(self):
        return SQL(
            """
            WITH accounts AS (
                SELECT DISTINCT company_id, credit_liability_account_id AS account_id
                  FROM referral_program
                 WHERE credit_liability_account_id IS NOT NULL
            ),
            books AS (
                SELECT aml.company_id, aml.partner_id,
                       -SUM(aml.balance) AS amount
                  FROM account_move_line aml
                  JOIN accounts a
                    ON a.account_id = aml.account_id
                   AND a.company_id = aml.company_id
                 WHERE aml.parent_state = 'posted'
                   AND aml.partner_id IS NOT NULL
              GROUP BY aml.company_id, aml.partner_id
            ),
            wallets AS (
                SELECT w.company_id, w.partner_id,
                       COALESCE(SUM(t.signed_amount), 0) AS balance,
                       COALESCE(-SUM(t.signed_amount) FILTER (
                           WHERE t.sale_order_id IS NOT NULL
                             AND t.invoice_id IS NULL
                       ), 0) AS on_orders
                  FROM referral_wallet w
                  JOIN (SELECT DISTINCT company_id FROM accounts) c
                    ON c.company_id = w.company_id
             LEFT JOIN referral_wallet_transaction t
                    ON t.wallet_id = w.id AND t.state = 'posted'
              GROUP BY w.company_id, w.partner_id
            ),
            lines AS (
                SELECT COALESCE(b.company_id, w.company_id) AS company_id,
                       COALESCE(b.partner_id, w.partner_id) AS partner_id,
                       COALESCE(b.amount, 0) AS liability_amount,
                       COALESCE(w.balance, 0) AS wallet_balance,
                       COALESCE(w.on_orders, 0) AS order_credit_amount
                  FROM books b
             FULL JOIN wallets w
                    ON w.company_id = b.company_id
                   AND w.partner_id = b.partner_id
            )
            SELECT ROW_NUMBER() OVER (ORDER BY l.company_id, l.partner_id) AS id,
                   l.company_id,
                   l.partner_id,
                   rc.currency_id,
                   l.liability_amount,
                   l.wallet_balance,
                   l.order_credit_amount,
                   l.wallet_balance + l.order_credit_amount AS owed_amount,
                   l.liability_amount - l.wallet_balance - l.order_credit_amount
                       AS difference
              FROM lines l
              JOIN res_company rc ON rc.id = l.company_id
             WHERE l.liability_amount <> 0
                OR l.wallet_balance <> 0
                OR l.order_credit_amount <> 0
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
