# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models
from odoo.exceptions import UserError, ValidationError

from .referral_referral import ACTIVE_STATES, LOCKED_WHEN_WON


class ReferralReferral(models.Model):
    """The rules a referral obeys: no self-referral nor sponsor cycle, one
    active referral per referee and company, an eligible sponsor, new
    business only, and won referrals changed through their actions only."""

    # One concern per file (see the docstring); merged by the ORM.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    @api.constrains("sponsor_id", "referee_id")
    def _check_referee_differs_from_sponsor(self):
        """A customer refers neither itself nor one of its own sponsors.

        Constraints run in name order: this one comes first on purpose."""
        for referral in self:
            sponsor = referral.sponsor_id.commercial_partner_id
            referee = referral.referee_id.commercial_partner_id
            if sponsor == referee:
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s cannot refer itself: the sponsor and the "
                        "referred company are the same customer.",
                        sponsor=sponsor.display_name,
                    )
                )
            partner, seen = sponsor.sponsor_id, sponsor
            while partner and partner not in seen:
                if partner == referee:
                    raise ValidationError(
                        self.env._(
                            "%(referee)s already sponsors %(sponsor)s, directly "
                            "or through other customers: a customer cannot "
                            "refer its own sponsor.",
                            referee=referee.display_name,
                            sponsor=sponsor.display_name,
                        )
                    )
                seen |= partner
                partner = partner.sponsor_id

    @api.model
    def _check_single_active_referral(self, pairs, exclude_ids=()):
        """Refuse a second active referral of a referee in a company;
        ``pairs`` are the (referee id, company id) about to be active. The
        exclusion constraint holds it against concurrent transactions; this
        check, run before writing, gives the message."""
        pairs = [pair for pair in pairs if pair[0]]
        if not pairs:
            return
        seen = set()
        duplicates = {pair for pair in pairs if pair in seen or seen.add(pair)}
        # Referrals of other salespeople count too, whatever the user sees.
        existing = self.sudo().search(
            [
                ("referee_id", "in", [pair[0] for pair in pairs]),
                ("company_id", "in", [pair[1] for pair in pairs]),
                ("state", "in", ACTIVE_STATES),
                ("id", "not in", list(exclude_ids)),
            ]
        )
        duplicates |= {(r.referee_id.id, r.company_id.id) for r in existing} & set(
            pairs
        )
        if duplicates:
            referee_id, company_id = sorted(duplicates)[0]
            raise ValidationError(
                self.env._(
                    "%(referee)s has already been referred to %(company)s. "
                    "Open the existing referral instead of creating a new "
                    "one.",
                    referee=self.env["res.partner"].browse(referee_id).display_name,
                    company=self.env["res.company"].browse(company_id).display_name,
                )
            )

    @api.constrains("sponsor_id", "program_id")
    def _check_sponsor_eligible(self):
        for referral in self:
            sponsor = referral.sponsor_id.commercial_partner_id
            if not sponsor.active or not referral.sponsor_id.active:
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s is archived and cannot sponsor.",
                        sponsor=referral.sponsor_id.display_name,
                    )
                )
            if not referral.program_id._is_sponsor_eligible(sponsor):
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s may not sponsor in the program "
                        "%(program)s: see who may sponsor in the program's "
                        "settings.",
                        sponsor=sponsor.display_name,
                        program=referral.program_id.display_name,
                    )
                )

    @api.constrains("referee_id", "program_id")
    def _check_referee_not_customer(self):
        for referral in self.filtered(
            lambda r: not r.program_id.allow_customer_referee
        ):
            orders = (
                self.env["sale.order"]
                .sudo()
                .search_count(
                    [
                        # The commercial entity's orders (one query, where
                        # child_of reads the contact tree first).
                        (
                            "partner_id.commercial_partner_id",
                            "=",
                            referral.referee_id.commercial_partner_id.id,
                        ),
                        ("company_id", "=", referral.company_id.id),
                        ("state", "=", "sale"),
                        ("id", "!=", referral.first_order_id.id),
                    ],
                    limit=1,
                )
            )
            if orders:
                raise ValidationError(
                    self.env._(
                        "%(referee)s is already a customer: the program "
                        "%(program)s only rewards new business.",
                        referee=referral.referee_id.display_name,
                        program=referral.program_id.display_name,
                    )
                )

    def _check_closed_fields_unchanged(self, vals):
        """Won and rewarded referrals change sponsor, referee, program, first
        order and state only through their actions (which pass the
        ``referral_action`` context key)."""
        locked = set(vals) & LOCKED_WHEN_WON
        if not locked or self.env.context.get("referral_action"):
            return
        won = self.filtered(lambda r: r.state in ("won", "rewarded"))
        changed = won.filtered(
            lambda r: any(r._value_differs(fname, vals[fname]) for fname in locked)
        )
        if changed:
            raise UserError(
                self.env._(
                    "%(referrals)s are won: their sponsor, referred company, "
                    "program, first order and status change only through their "
                    "buttons (cancelling the first order reopens them).",
                    referrals=", ".join(changed.mapped("name")),
                )
            )

    def _value_differs(self, fname, value):
        self.ensure_one()
        current = self[fname]
        if self._fields[fname].type == "many2one":
            current = current.id
            value = value.id if isinstance(value, models.BaseModel) else value
        return (current or False) != (value or False)
