# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError


class ReferralWalletStatementWizard(models.TransientModel):
    _name = "referral.wallet.statement.wizard"
    _description = "Print Referral Credit Statements for a Period"

    date_from = fields.Date(
        string="From",
        required=True,
        default=lambda self: self._default_date_to()
        - relativedelta(months=12)
        + relativedelta(days=1),
    )
    date_to = fields.Date(
        string="To", required=True, default=lambda self: self._default_date_to()
    )
    wallet_ids = fields.Many2many("referral.wallet", string="Wallets", required=True)

    @api.model
    def default_get(self, fields_list):
        values = super().default_get(fields_list)
        context = self.env.context
        # Opened from the wallets' Print menu: the selected wallets.
        if (
            "wallet_ids" in fields_list
            and not values.get("wallet_ids")
            and context.get("active_model") == "referral.wallet"
        ):
            values["wallet_ids"] = [(6, 0, context.get("active_ids") or [])]
        return values

    def _default_date_to(self):
        return fields.Date.context_today(self)

    def action_print(self):
        self.ensure_one()
        if self.date_from > self.date_to:
            raise UserError(
                self.env._("The period must start before it ends: change its dates.")
            )
        action = self.env.ref(
            "sale_referral_lifecycle.action_report_referral_statement"
        ).report_action(self.wallet_ids, data=self._prepare_report_data())
        if len(self.wallet_ids) == 1:
            action["name"] = self.env._(
                "Referral credit statement - %(partner)s",
                partner=self.wallet_ids.partner_id.display_name,
            )
        return action

    def _prepare_report_data(self):
        """Report data of the statement: the web client prints a report with
        data from these options alone, without record ids, so they name the
        wallets too."""
        self.ensure_one()
        return {
            "wallet_ids": self.wallet_ids.ids,
            "date_from": fields.Date.to_string(self.date_from),
            "date_to": fields.Date.to_string(self.date_to),
        }
