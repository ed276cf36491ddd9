# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools import SQL

from .referral_referral import ACCEPTED_STATES, ACTIVE_STATES, OPEN_STATES


class SaleOrder(models.Model):
    """The order's link to its customer's referral: the code typed by the
    salesperson, the referral won by the first order, the Referral source."""

    # One concern per file (see the class docstring); merged by the ORM.
    _inherit = "sale.order"  # pylint: disable=consider-merging-classes-inherited

    referral_code = fields.Char(
        copy=False,
        help="Referral code of the customer who referred this one. On "
        "confirmation the order is linked to that customer's referral.",
    )
    referral_id = fields.Many2one(
        "referral.referral",
        readonly=True,
        copy=False,
        index="btree_not_null",
        check_company=True,
    )

    @api.constrains("referral_code", "partner_id")
    def _check_referral_code(self):
        orders = self.filtered("referral_code")
        sponsors = self.env["res.partner"]._find_by_referral_code(
            orders.mapped("referral_code")
        )
        for order in orders:
            sponsor = sponsors.get(order.referral_code.strip().upper())
            if not sponsor:
                raise ValidationError(
                    self.env._(
                        "No customer has the referral code %(code)s. Check the "
                        "code with the customer or leave it empty.",
                        code=order.referral_code,
                    )
                )
            if sponsor == order.partner_id.commercial_partner_id:
                raise ValidationError(
                    self.env._(
                        "The referral code %(code)s is the customer's own code: "
                        "a customer cannot refer itself.",
                        code=order.referral_code,
                    )
                )
            program = (
                self.env["referral.program"]
                .sudo()
                ._get_company_program(order.company_id)
            )
            # sudo: eligibility reads the sponsor's orders, whoever owns them.
            if program and not program._is_sponsor_eligible(sponsor):
                raise ValidationError(
                    self.env._(
                        "%(sponsor)s (code %(code)s) may not sponsor in the "
                        "program %(program)s: see who may sponsor in the "
                        "program's settings.",
                        sponsor=sponsor.display_name,
                        code=order.referral_code,
                        program=program.display_name,
                    )
                )

    def _referred_orders(self):
        """The orders whose customer has an active referral in the order's
        company (one query)."""
        if not self:
            return self
        # sudo: the referral belongs to the sponsor's salesperson.
        referred = {
            (referee.id, company.id)
            for referee, company in self.env["referral.referral"]
            .sudo()
            ._read_group(
                [
                    ("referee_id", "in", self.partner_id.commercial_partner_id.ids),
                    ("company_id", "in", self.company_id.ids),
                    ("state", "in", ACCEPTED_STATES),
                ],
                ["referee_id", "company_id"],
            )
        }
        return self.filtered(
            lambda o: (o.partner_id.commercial_partner_id.id, o.company_id.id)
            in referred
        )

    def _set_referral_source(self):
        # The id is cached: no query to find the source (as env.ref does).
        source_id = self.env["ir.model.data"]._xmlid_to_res_id(
            "sale_referral_lifecycle.utm_source_referral", raise_if_not_found=False
        )
        if source_id and self:
            self.write({"source_id": source_id})

    def _link_referrals(self):
        """Link confirmed orders to their customer's referral: create the
        referral a typed code asks for, and mark won the referrals of the
        customers confirming their first order."""
        coded = self.filtered("referral_code")
        if not coded and not self._has_referred_customer():
            # A plain order: no code typed, and its customer has no active
            # referral: nothing more to read.
            return
        referees = self.partner_id.commercial_partner_id
        # The referral of a customer belongs to the sponsor's salesperson,
        # who may not be the one confirming the order.
        Referral = self.env["referral.referral"].sudo()
        referrals = Referral.search(
            [
                ("referee_id", "in", referees.ids),
                ("company_id", "in", self.company_id.ids),
                ("state", "in", ACTIVE_STATES),
            ]
        )
        if not referrals and not coded:
            return
        known = {(r.referee_id, r.company_id) for r in referrals}
        vals_list = coded._prepare_code_referral_values(known)
        # Born won from their first order: no second write to win them. The
        # user confirming the order does not follow them: they belong to the
        # sponsor's salesperson.
        created = (
            Referral.with_context(mail_create_nosubscribe=True)
            .create(vals_list)
            .with_env(Referral.env)
            if vals_list
            else Referral
        )
        referrals |= created
        won = referrals.filtered(lambda r: r.state in OPEN_STATES) | created
        won._action_won(self)
        for order in self.filtered(lambda o: not o.referral_id):
            referral = referrals.filtered(
                lambda r, o=order: (
                    r.referee_id == o.partner_id.commercial_partner_id
                    and r.company_id == o.company_id
                )
            )[:1]
            if referral:
                order.referral_id = referral
        self.filtered(
            lambda o: o.referral_id and not o.source_id
        )._set_referral_source()

    def _has_referred_customer(self):
        """Whether the customer of one of these orders has an active
        referral (its commercial entity's stored sponsor says so): one query,
        without loading the contacts."""
        self.env["res.partner"].flush_model(["commercial_partner_id", "sponsor_id"])
        return bool(
            self.env.execute_query(
                SQL(
                    """
                    SELECT 1
                      FROM res_partner p
                      JOIN res_partner c ON c.id = p.commercial_partner_id
                     WHERE p.id = ANY(%s) AND c.sponsor_id IS NOT NULL
                     LIMIT 1
                    """,
                    self.partner_id.ids,
                )
            )
        )

    def _on_queued_state_change(self, state, moments):
        res = super()._on_queued_state_change(state, moments)
        if state == "sale":
            self._grant_referral_rewards()
        return res

    def _grant_referral_rewards(self):
        """Reward the sponsors of the referrals these confirmed orders won,
        in programs rewarding at confirmation; tell the sponsors not rewarded
        (reward waiting for approval, zero or capped) that their referral
        ordered. Run by the lifecycle queue's job, not within the
        confirmation; once per referral whatever runs it again (the referral
        rows are locked, ``_grant_rewards`` skips those already rewarded)."""
        # sudo: the reward is earned whoever confirmed the order.
        referrals = (
            self.env["referral.referral"]
            .sudo()
            .search(
                [
                    ("first_order_id", "in", self.ids),
                    ("first_order_id.state", "=", "sale"),
                    ("state", "=", "won"),
                    ("program_id.reward_trigger", "=", "order_confirmed"),
                ]
            )
        )
        if not referrals:
            return
        self.env.cr.execute(
            "SELECT id FROM referral_referral WHERE id IN %s FOR UPDATE",
            [tuple(referrals.ids)],
        )
        referrals.invalidate_recordset(["state"])
        referrals._grant_rewards()
        referrals._queue_won_email()

    def _prepare_code_referral_values(self, known):
        """Values of the referrals to create for the codes typed on these
        orders, skipping customers already referred (``known`` holds
        ``(referee, company)`` pairs)."""
        sponsors = self.env["res.partner"]._find_by_referral_code(
            self.mapped("referral_code")
        )
        vals_list = []
        Program = self.env["referral.program"].sudo()
        for order in self:
            referee = order.partner_id.commercial_partner_id
            if (referee, order.company_id) in known:
                continue
            sponsor = sponsors.get(order.referral_code.strip().upper())
            if not sponsor:
                # Regenerated or archived since it was typed.
                raise ValidationError(
                    self.env._(
                        "The referral code %(code)s of %(order)s is no longer "
                        "valid: ask the customer for the current one or clear "
                        "it.",
                        code=order.referral_code,
                        order=order.name,
                    )
                )
            known.add((referee, order.company_id))
            vals_list.append(
                {
                    "sponsor_id": sponsor.id,
                    "referee_id": referee.id,
                    "company_id": order.company_id.id,
                    "source": "code",
                    "first_order_id": order.id,
                    "state": "won",
                    "date_won": fields.Datetime.now(),
                    # Read once here rather than by each check of the creation.
                    "program_id": Program._get_company_program(order.company_id).id,
                }
            )
        return vals_list
