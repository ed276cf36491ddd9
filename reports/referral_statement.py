# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError

from ..models.wallet.referral_wallet_transaction import EXPIRY_WARNING_DAYS


class ReportReferralStatement(models.AbstractModel):
    """Figures of the referral credit statement of wallets: balances around
    a period, the posted movements in it, pending rewards and the credit that
    expires soon, read once for all the wallets printed."""

    _name = "report.sale_referral_lifecycle.report_referral_statement"
    _description = "Referral Credit Statement"

    @api.model
    def _get_report_values(self, docids, data=None):
        # Printed from the period wizard, the web client sends the data
        # without record ids: the data names the wallets.
        wallets = self.env["referral.wallet"].browse(
            docids or (data or {}).get("wallet_ids") or []
        )
        date_from, date_to = self._get_period(data)
        today = fields.Date.context_today(self)
        expiry_limit = today + relativedelta(days=EXPIRY_WARNING_DAYS)
        return {
            "doc_ids": wallets.ids,
            "doc_model": "referral.wallet",
            "docs": wallets,
            "date_from": date_from,
            "date_to": date_to,
            "expiry_limit": expiry_limit,
            "statements": self._get_statements(
                wallets, date_from, date_to, today, expiry_limit
            ),
        }

    @api.model
    def _get_period(self, data):
        """The statement period from the report ``data`` (``date_from``,
        ``date_to``); by default the twelve months up to today."""
        data = data or {}
        date_to = fields.Date.to_date(data.get("date_to")) or (
            fields.Date.context_today(self)
        )
        date_from = fields.Date.to_date(data.get("date_from")) or (
            date_to - relativedelta(months=12) + relativedelta(days=1)
        )
        if date_from > date_to:
            raise UserError(
                self.env._(
                    "The statement period starts on %(date_from)s, after its end "
                    "on %(date_to)s. Choose an earlier start date.",
                    date_from=date_from,
                    date_to=date_to,
                )
            )
        return date_from, date_to

    @api.model
    def _get_statements(self, wallets, date_from, date_to, today, expiry_limit):
        """{wallet id: statement values}, with one query per kind of figure
        for all ``wallets``."""
        Transaction = self.env["referral.wallet.transaction"]
        wallet_domain = [("wallet_id", "in", wallets.ids)]
        opening = {
            wallet.id: amount
            for wallet, amount in Transaction._read_group(
                wallet_domain + [("state", "=", "posted"), ("date", "<", date_from)],
                ["wallet_id"],
                ["signed_amount:sum"],
            )
        }
        movements = Transaction.search(
            wallet_domain
            + [
                ("state", "=", "posted"),
                ("date", ">=", date_from),
                ("date", "<=", date_to),
            ],
            order="date, id",
        )
        pending = Transaction.search(
            wallet_domain + [("state", "=", "pending")], order="date, id"
        )
        expiring = Transaction.search(
            wallet_domain
            + [
                ("state", "=", "posted"),
                ("direction", "=", "in"),
                ("remaining_amount", ">", 0),
                ("expiry_date", ">=", today),
                ("expiry_date", "<=", expiry_limit),
            ],
            order="expiry_date, id",
        )
        by_wallet = {
            name: self._group_by_wallet(records)
            for name, records in (
                ("movements", movements),
                ("pending", pending),
                ("expiring", expiring),
            )
        }
        statements = {}
        for wallet in wallets:
            currency = wallet.currency_id
            balance = currency.round(opening.get(wallet.id, 0.0))
            lines = []
            for movement in by_wallet["movements"][wallet.id]:
                balance = currency.round(balance + movement.signed_amount)
                lines.append({"transaction": movement, "balance": balance})
            wallet_pending = by_wallet["pending"][wallet.id]
            wallet_expiring = by_wallet["expiring"][wallet.id]
            statements[wallet.id] = {
                "opening_balance": currency.round(opening.get(wallet.id, 0.0)),
                "lines": lines,
                "closing_balance": balance,
                "pending": wallet_pending,
                "pending_amount": currency.round(sum(wallet_pending.mapped("amount"))),
                "expiring": wallet_expiring,
                "expiring_amount": currency.round(
                    sum(wallet_expiring.mapped("remaining_amount"))
                ),
            }
        return statements

    @api.model
    def _group_by_wallet(self, transactions):
        ids_by_wallet = defaultdict(list)
        for transaction in transactions:
            ids_by_wallet[transaction.wallet_id.id].append(transaction.id)
        return defaultdict(
            transactions.browse,
            {
                wallet_id: transactions.browse(ids)
                for wallet_id, ids in ids_by_wallet.items()
            },
        )
