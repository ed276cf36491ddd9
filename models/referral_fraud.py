# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import re
from datetime import timedelta

from odoo import api, fields, models
from odoo.exceptions import UserError
from odoo.tools import email_domain_extract

# Odoo's list of free-mail providers (gmail.com, hotmail.com...): a domain
# shared by two strangers there means nothing. Plain Python, importable
# whether or not the iap addon is installed.
from odoo.addons.iap.tools.iap_tools import _MAIL_DOMAIN_BLACKLIST

REVIEW_MANAGER_GROUP = "sales_team.group_sale_manager"


class ReferralReferral(models.Model):
    """Fraud checks: a referral whose referee looks like its sponsor (same
    Tax ID, company email domain, phone or company registry), or that comes
    in a burst from one sponsor, waits in the state *To Review*; no activity
    runs and no reward is granted until a Sales administrator accepts it."""

    # One concern per file (DESIGN.md code map): kept apart from the
    # model's main file on purpose.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    state = fields.Selection(
        selection_add=[("to_review", "To Review")],
        ondelete={"to_review": "set default"},
    )
    review_reason = fields.Text(
        readonly=True,
        copy=False,
        groups="sales_team.group_sale_salesman",
        help="Why this referral waits for a review by a Sales administrator.",
    )

    @api.model_create_multi
    def create(self, vals_list):
        # The activity plan waits for the fraud checks below.
        referrals = super(
            ReferralReferral, self.with_context(referral_hold_activity_plan=True)
        ).create(vals_list)
        referrals = referrals.with_env(self.env)
        flagged = referrals._flag_suspicious()
        (referrals - flagged).filtered(
            lambda r: not r.first_order_id
        ).sudo()._launch_activity_plan()
        return referrals

    def _launch_activity_plan(self):
        if self.env.context.get("referral_hold_activity_plan"):
            return self.env["mail.activity"]
        return super()._launch_activity_plan()

    def action_review_accept(self):
        """Accept referrals held for review: they become new and their
        activity plan starts."""
        to_review = self._check_reviewable()
        to_review.sudo().write({"state": "new"})
        for referral in to_review:
            referral.message_post(
                body=self.env._(
                    "Review: referral accepted by %(user)s.", user=self.env.user.name
                )
            )
        to_review.sudo()._launch_activity_plan()

    def action_review_reject(self):
        to_review = self._check_reviewable()
        to_review.sudo().write({"state": "rejected"})
        for referral in to_review:
            referral.message_post(
                body=self.env._(
                    "Review: referral rejected by %(user)s.", user=self.env.user.name
                )
            )

    def _check_reviewable(self):
        if not self.env.user.has_group(REVIEW_MANAGER_GROUP):
            raise UserError(
                self.env._(
                    "Only Sales administrators accept or reject referrals held "
                    "for review."
                )
            )
        to_review = self.filtered(lambda r: r.state == "to_review")
        if to_review != self:
            raise UserError(self.env._("Only referrals to review can be reviewed."))
        return to_review

    def _flag_suspicious(self):
        """Hold for review the new referrals (not born from an order) that
        look fraudulent; return them."""
        flagged = self.browse()
        for referral in self.sudo().filtered(
            lambda r: r.state == "new" and not r.first_order_id
        ):
            reasons = referral._get_fraud_reasons()
            if not reasons:
                continue
            reason = "\n".join(reasons)
            referral.write({"state": "to_review", "review_reason": reason})
            referral.message_post(
                body=self.env._(
                    "Held for review by a Sales administrator: %(reason)s",
                    reason=reason,
                )
            )
            flagged |= referral
        return flagged.with_env(self.env)

    def _get_fraud_reasons(self):
        """Why this referral looks fraudulent, in words (empty: it does not)."""
        self.ensure_one()
        sponsor = self.sponsor_id.commercial_partner_id
        referee = self.referee_id.commercial_partner_id
        sponsor_people = sponsor | sponsor.child_ids
        referee_people = referee | referee.child_ids
        reasons = []
        vat = self._normalize_identifier(referee.vat or self.referee_vat)
        if vat and vat == self._normalize_identifier(sponsor.vat):
            reasons.append(self.env._("The referee has the sponsor's Tax ID."))
        registry = self._normalize_identifier(referee.company_registry)
        if registry and registry == self._normalize_identifier(
            sponsor.company_registry
        ):
            reasons.append(
                self.env._("The referee has the sponsor's company registry number.")
            )
        referee_domains = self._company_email_domains(
            referee_people.mapped("email") + [self.referee_email]
        )
        if referee_domains & self._company_email_domains(
            sponsor_people.mapped("email")
        ):
            reasons.append(self.env._("The referee's email domain is the sponsor's."))
        referee_phones = self._normalize_phones(
            referee_people.mapped("phone")
            + referee_people.mapped("mobile")
            + [self.referee_phone]
        )
        if referee_phones & self._normalize_phones(
            sponsor_people.mapped("phone") + sponsor_people.mapped("mobile")
        ):
            reasons.append(self.env._("The referee has the sponsor's phone number."))
        limit = self.program_id.fraud_burst_limit
        if limit:
            since = fields.Datetime.now() - timedelta(hours=1)
            recent = self.search_count(
                [
                    ("sponsor_id", "=", sponsor.id),
                    ("company_id", "=", self.company_id.id),
                    ("create_date", ">=", since),
                ]
            )
            if recent > limit:
                reasons.append(
                    self.env._(
                        "The sponsor sent %(count)s referrals within an hour "
                        "(more than %(limit)s).",
                        count=recent,
                        limit=limit,
                    )
                )
        return reasons

    @api.model
    def _normalize_identifier(self, value):
        return re.sub(r"[^0-9A-Z]", "", (value or "").upper())

    @api.model
    def _company_email_domains(self, emails):
        """Email domains of ``emails`` that identify a company: free-mail
        providers left out."""
        domains = {email_domain_extract(email or "") for email in emails}
        return {d for d in domains if d and d not in _MAIL_DOMAIN_BLACKLIST}

    @api.model
    def _normalize_phones(self, phones):
        """Phone numbers reduced to their last 8 digits (written with a
        country code or a national prefix alike), short ones left out."""
        digits = {re.sub(r"\D", "", phone or "") for phone in phones}
        return {d[-8:] for d in digits if len(d) >= 8}
