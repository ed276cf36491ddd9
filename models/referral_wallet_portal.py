# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import fields, models

from ..reports.referral_statement import EXPIRY_WARNING_DAYS


class ReferralWallet(models.Model):
    """What the sponsor's portal shows of its wallet."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "referral.wallet"  # pylint: disable=consider-merging-classes-inherited

    def _portal_wallet_values(self, page, step):
        """Balance, pending rewards, a page of posted movements and the
        credit expiring soon, for the portal page (an empty wallet shows
        nothing)."""
        Transaction = self.env["referral.wallet.transaction"].sudo()
        domain = [("wallet_id", "in", self.ids), ("state", "=", "posted")]
        today = fields.Date.context_today(self)
        page = max(int(page or 1), 1)
        return {
            "movement_count": Transaction.search_count(domain),
            "movements": Transaction.search(
                domain,
                order="date desc, id desc",
                limit=step,
                offset=(page - 1) * step,
            ),
            "pending": Transaction.search(
                [("wallet_id", "in", self.ids), ("state", "=", "pending")],
                order="date desc, id desc",
            ),
            "expiring": Transaction.search(
                domain
                + [
                    ("transaction_type", "=", "credit"),
                    ("remaining_amount", ">", 0),
                    ("expiry_date", "!=", False),
                    ("expiry_date", ">=", today),
                    (
                        "expiry_date",
                        "<=",
                        today + relativedelta(days=EXPIRY_WARNING_DAYS),
                    ),
                ],
                order="expiry_date",
            ),
            "expiry_days": EXPIRY_WARNING_DAYS,
            "statement_date_from": today - relativedelta(months=12, days=-1),
            "statement_date_to": today,
        }

    def _portal_render_statement(self, date_from, date_to):
        """The statement PDF of this wallet for the period (dates as
        strings, by default the last twelve months)."""
        self.ensure_one()
        data = {
            "date_from": fields.Date.to_string(fields.Date.to_date(date_from or None)),
            "date_to": fields.Date.to_string(fields.Date.to_date(date_to or None)),
        }
        report = self.env["ir.actions.report"].sudo().with_company(self.company_id)
        pdf, _report_type = report._render_qweb_pdf(
            "sale_referral_lifecycle.action_report_referral_statement",
            self.ids,
            data=data,
        )
        return pdf
