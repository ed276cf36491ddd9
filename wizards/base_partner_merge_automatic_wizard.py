# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Odoo's Merge Contacts, aware of what this addon keeps per contact: the
merged contacts' referral wallets join the surviving contact's (one wallet
per customer and company, every unit of credit and the whole history kept),
their referrals no longer clash (one active referral per referee and
company, no self-referral), and the survivor's lifecycle values are computed
again from its orders. The merged contacts' referral codes are retired when
they are deleted: they stop working and are never given to another
contact."""

from odoo import fields, models
from odoo.tools import SQL

from ..models.referral.referral_referral import ACTIVE_STATES

# Which of two active referrals of one referee stays: the furthest along.
REFERRAL_STATE_RANK = {
    "rewarded": 0,
    "won": 1,
    "in_progress": 2,
    "new": 3,
    "to_review": 4,
}


class BasePartnerMergeAutomaticWizard(models.TransientModel):
    _inherit = "base.partner.merge.automatic.wizard"

    def _update_foreign_keys(self, src_partners, dst_partner):
        """Before Odoo points the merged contacts' records at the survivor:
        merge what unique keys would otherwise make clash."""
        self._merge_referral_wallets(src_partners, dst_partner)
        self._close_clashing_referrals(src_partners, dst_partner)
        self._merge_followup_logs(src_partners, dst_partner)
        # Their codes stop working and are never given to another contact.
        src_partners._retire_referral_codes()
        return super()._update_foreign_keys(src_partners, dst_partner)

    def _update_values(self, src_partners, dst_partner):
        """The survivor's values merged: its lifecycle (stage, aggregates,
        sponsor) computed again from all its orders and referrals, and the
        rewards of the referrals closed as duplicates revoked."""
        # The stage copied from a merged contact is no manual move: the
        # engine places the survivor again below.
        res = super()._update_values(
            src_partners.with_context(lifecycle_automatic=True),
            dst_partner.with_context(lifecycle_automatic=True),
        )
        Partner = self.env["res.partner"]
        contacts = Partner.search([("id", "child_of", dst_partner.ids)])
        self.env.add_to_compute(Partner._fields["sponsor_id"], contacts)
        dst_partner.commercial_partner_id._lifecycle_recompute()
        # sudo: the merged contacts' referrals may belong to other salespeople.
        referrals = (
            self.env["referral.referral"]
            .sudo()
            .search(
                [
                    "|",
                    ("sponsor_id", "=", dst_partner.commercial_partner_id.id),
                    ("referee_id", "=", dst_partner.commercial_partner_id.id),
                ]
            )
        )
        self.env["referral.ledger"]._sync_rewards(referrals.filtered("transaction_ids"))
        return res

    # ------------------------------------------------------------------
    # Wallets
    # ------------------------------------------------------------------

    def _merge_referral_wallets(self, src_partners, dst_partner):
        """Per company, the merged contacts' wallets join the survivor's
        (its commercial entity's): their movements, what they consumed and
        the credit lines of documents move into it, and the emptied wallets
        go."""
        # sudo: the ledger is not writable through access rights.
        Wallet = self.env["referral.wallet"].sudo()
        owner = dst_partner.commercial_partner_id
        merged = Wallet.search([("partner_id", "in", (src_partners - owner).ids)])
        if not merged:
            return
        self.env.flush_all()
        for company in merged.company_id:
            wallets = merged.filtered(lambda w, c=company: w.company_id == c)
            survivor = Wallet.search(
                [("partner_id", "=", owner.id), ("company_id", "=", company.id)]
            )
            if not survivor:
                survivor, wallets = wallets[0], wallets[1:]
                self.env.cr.execute(
                    SQL(
                        "UPDATE referral_wallet SET partner_id = %s WHERE id = %s",
                        owner.id,
                        survivor.id,
                    )
                )
                self.env.cr.execute(
                    SQL(
                        "UPDATE referral_wallet_transaction SET partner_id = %s "
                        "WHERE wallet_id = %s",
                        owner.id,
                        survivor.id,
                    )
                )
            for wallet in wallets:
                self._move_wallet_into(wallet, survivor)
        self.env.invalidate_all()

    def _move_wallet_into(self, wallet, survivor):
        """Move everything of ``wallet`` into ``survivor`` (same company),
        say so on the survivor, and delete the emptied wallet."""
        count = len(wallet.transaction_ids)
        name = wallet.partner_id.display_name
        balance = wallet.balance
        for query in (
            "UPDATE referral_wallet_transaction SET wallet_id = %(to)s, "
            "partner_id = %(partner)s WHERE wallet_id = %(from)s",
            "UPDATE referral_wallet_allocation SET wallet_id = %(to)s "
            "WHERE wallet_id = %(from)s",
            "UPDATE sale_order_line SET referral_credit_wallet_id = %(to)s "
            "WHERE referral_credit_wallet_id = %(from)s",
            "UPDATE account_move_line SET referral_credit_wallet_id = %(to)s "
            "WHERE referral_credit_wallet_id = %(from)s",
            "UPDATE mail_message SET res_id = %(to)s "
            "WHERE model = 'referral.wallet' AND res_id = %(from)s",
            "DELETE FROM mail_followers "
            "WHERE res_model = 'referral.wallet' AND res_id = %(from)s",
        ):
            self.env.cr.execute(
                query,
                {
                    "to": survivor.id,
                    "from": wallet.id,
                    "partner": survivor.partner_id.id,
                },
            )
        self.env.invalidate_all()
        wallet.unlink()
        survivor.message_post(
            body=self.env._(
                "Merged with the wallet of %(contact)s: its %(count)s "
                "movements (balance %(balance)s) are now in this wallet.",
                contact=name,
                count=count,
                balance=survivor._format_amount(balance),
            )
        )

    # ------------------------------------------------------------------
    # Referrals, codes, follow-ups
    # ------------------------------------------------------------------

    def _close_clashing_referrals(self, src_partners, dst_partner):
        """After the merge, a referee keeps one active referral per company
        (the furthest along, then the oldest) and nobody refers itself: the
        others are closed as lost duplicates; their rewards are revoked."""
        # sudo: the merged contacts' referrals may belong to other salespeople.
        Referral = self.env["referral.referral"].sudo()
        merged = src_partners | dst_partner
        referrals = Referral.search(
            [
                ("state", "in", ACTIVE_STATES),
                "|",
                ("referee_id", "in", merged.ids),
                ("sponsor_id", "in", merged.ids),
            ]
        )
        self_referrals = referrals.filtered(
            lambda r: r.referee_id in merged and r.sponsor_id in merged
        )
        kept_by_company, duplicates = {}, Referral
        for referral in (
            (referrals - self_referrals)
            .filtered(lambda r: r.referee_id in merged)
            .sorted(
                lambda r: (REFERRAL_STATE_RANK.get(r.state, 9), r.date_referral, r.id)
            )
        ):
            kept = kept_by_company.setdefault(referral.company_id, referral)
            if kept != referral:
                duplicates |= referral
        for referral in self_referrals:
            referral.message_post(
                body=self.env._(
                    "Closed: its sponsor and its referred company were merged "
                    "into %(contact)s.",
                    contact=dst_partner.display_name,
                )
            )
        for referral in duplicates:
            referral.message_post(
                body=self.env._(
                    "Closed: its referred company was merged into %(contact)s, "
                    "already referred in %(referral)s.",
                    contact=dst_partner.display_name,
                    referral=kept_by_company[referral.company_id].name,
                )
            )
        closing = self_referrals | duplicates
        if not closing:
            return
        reason = self.env.ref(
            "sale_referral_lifecycle.referral_lost_reason_merged",
            raise_if_not_found=False,
        )
        closing._flow_write(
            {
                "state": "lost",
                "lost_reason_id": reason.id if reason else False,
                "date_closed": fields.Datetime.now(),
            }
        )

    def _merge_followup_logs(self, src_partners, dst_partner):
        """What the follow-up rules did to the merged contacts counts for the
        survivor, unless the survivor has its own row for the same step and
        occurrence (that one stays)."""
        self.env["partner.followup.log"].flush_model()
        self.env.cr.execute(
            SQL(
                """
                UPDATE partner_followup_log log
                   SET res_id = %(dst)s
                 WHERE log.id IN (
                       SELECT DISTINCT ON (rule_id, step_id, occurrence) id
                         FROM partner_followup_log
                        WHERE res_model = 'res.partner' AND res_id IN %(src)s
                     ORDER BY rule_id, step_id, occurrence, id)
                   AND NOT EXISTS (
                       SELECT 1 FROM partner_followup_log other
                        WHERE other.res_model = 'res.partner'
                          AND other.res_id = %(dst)s
                          AND other.rule_id = log.rule_id
                          AND other.step_id = log.step_id
                          AND other.occurrence = log.occurrence)
                """,
                dst=dst_partner.id,
                src=tuple(src_partners.ids),
            )
        )
