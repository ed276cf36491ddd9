# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import secrets

from odoo import api, fields, models
from odoo.exceptions import AccessError

from .referral_referral import ACTIVE_STATES

# No 0/O, 1/I/L: a code is read aloud and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def generate_referral_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


class ResPartner(models.Model):
    _inherit = "res.partner"

    referral_code = fields.Char(
        default=lambda self: generate_referral_code(),
        copy=False,
        # No index=True: the UNIQUE constraint below is its index already.
        readonly=True,
        help="Code the customer shares with the companies it refers; typed on "
        "their first sales order, it links them to this customer.",
    )
    sponsor_id = fields.Many2one(
        "res.partner",
        string="Referred By",
        compute="_compute_sponsor_id",
        store=True,
        index="btree_not_null",
        help="Sponsor of the active referral of this customer.",
    )
    referral_ids = fields.One2many(
        "referral.referral",
        "sponsor_id",
        string="Referrals",
        help="Companies this customer referred.",
    )
    referee_referral_ids = fields.One2many(
        "referral.referral", "referee_id", string="Referrals Received"
    )
    referral_count = fields.Integer(compute="_compute_referral_count")
    referral_wallet_ids = fields.One2many(
        "referral.wallet", "partner_id", string="Referral Wallets"
    )
    referral_credit_balance = fields.Monetary(
        string="Referral Credit",
        compute="_compute_referral_credit_balance",
        currency_field="referral_credit_currency_id",
        groups="sales_team.group_sale_salesman,account.group_account_invoice",
        help="Credit of the commercial entity's wallet in the current company.",
    )
    referral_credit_currency_id = fields.Many2one(
        "res.currency", compute="_compute_referral_credit_balance"
    )

    # The lifecycle is per company (``company_dependent``: one jsonb column
    # keyed by company id, read, searched and grouped in the current
    # company): a contact shared by several companies has a stage and
    # aggregates in each, from that company's orders only.
    lifecycle_stage_id = fields.Many2one(
        "partner.lifecycle.stage",
        company_dependent=True,
        tracking=True,
        copy=False,
        ondelete="restrict",
        group_expand="_read_group_lifecycle_stage_ids",
        help="Moves by itself with the stage criteria; a manual move locks it. "
        "One stage per company.",
    )
    lifecycle_stage_locked = fields.Boolean(
        string="Stage Locked",
        company_dependent=True,
        copy=False,
        tracking=True,
        help="Moved by hand: the stage criteria leave this contact alone in "
        "this company until it is unlocked.",
    )
    lifecycle_stage_date = fields.Datetime(
        string="In Stage Since", company_dependent=True, copy=False
    )
    lifecycle_quotation_count = fields.Integer(
        string="Quotations Received",
        company_dependent=True,
        readonly=True,
        copy=False,
        help="Quotations of this company sent to the contact.",
    )
    lifecycle_order_count = fields.Integer(
        string="Confirmed Orders",
        company_dependent=True,
        readonly=True,
        copy=False,
        help="Confirmed orders of this company.",
    )
    lifecycle_last_order_date = fields.Datetime(
        string="Last Order", company_dependent=True, readonly=True, copy=False
    )
    lifecycle_history_ids = fields.One2many(
        "partner.lifecycle.history", "partner_id", string="Stage History"
    )
    first_contact_date = fields.Date(
        company_dependent=True,
        copy=False,
        help="Set when the contact is created in this company, else from its "
        "first quotation (or referral) here.",
    )
    first_contact_source_id = fields.Many2one(
        "utm.source", company_dependent=True, copy=False
    )
    first_contact_medium_id = fields.Many2one(
        "utm.medium", company_dependent=True, copy=False
    )
    lifecycle_converted = fields.Integer(
        string="Conversion Rate (%)",
        company_dependent=True,
        readonly=True,
        copy=False,
        aggregator="avg",
        help="100 once the contact confirmed an order of this company, else 0: "
        "its average over contacts is their conversion rate.",
    )
    lifecycle_days_to_client = fields.Integer(
        string="Days to Client",
        company_dependent=True,
        readonly=True,
        copy=False,
        aggregator="avg",
        help="Days from the first contact to the first confirmed order.",
    )
    subscription_end_date = fields.Date(
        company_dependent=True,
        readonly=True,
        copy=False,
        help="End of the subscription bought through confirmed orders of "
        "subscription products of this company.",
    )

    _sql_constraints = [
        (
            "referral_code_unique",
            "UNIQUE(referral_code)",
            "This referral code is already used by another contact.",
        ),
    ]

    def _init_column(self, column_name):
        # The default would give every existing contact the same code.
        if column_name != "referral_code":
            return super()._init_column(column_name)
        return self._fill_missing_referral_codes()

    @api.depends(
        "commercial_partner_id.referee_referral_ids.state",
        "commercial_partner_id.referee_referral_ids.sponsor_id",
    )
    def _compute_sponsor_id(self):
        for partner in self:
            referrals = partner.commercial_partner_id.referee_referral_ids.filtered(
                lambda r: r.state in ACTIVE_STATES
            )
            partner.sponsor_id = referrals[:1].sponsor_id

    @api.depends("commercial_partner_id")
    def _compute_referral_count(self):
        counts = dict(
            self.env["referral.referral"]._read_group(
                [("sponsor_id", "in", self.commercial_partner_id.ids)],
                ["sponsor_id"],
                ["__count"],
            )
        )
        for partner in self:
            partner.referral_count = counts.get(partner.commercial_partner_id, 0)

    @api.depends_context("company")
    @api.depends("commercial_partner_id")
    def _compute_referral_credit_balance(self):
        company = self.env.company
        wallets = self.env["referral.wallet"].search(
            [
                ("partner_id", "in", self.commercial_partner_id.ids),
                ("company_id", "=", company.id),
            ]
        )
        balance_by_partner = {w.partner_id: w.balance for w in wallets}
        for partner in self:
            partner.referral_credit_currency_id = company.currency_id
            partner.referral_credit_balance = balance_by_partner.get(
                partner.commercial_partner_id, 0.0
            )

    def action_view_referral_wallet(self):
        self.ensure_one()
        wallet = self.env["referral.wallet"]._get_or_create(self, self.env.company)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_wallet"
        )
        action.update({"res_id": wallet.id, "views": [(False, "form")]})
        return action

    def action_view_referrals(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        sponsor = self.commercial_partner_id
        action["domain"] = [("sponsor_id", "=", sponsor.id)]
        action["context"] = {"default_sponsor_id": sponsor.id}
        return action

    def action_refer_company(self):
        self.ensure_one()
        self._check_referral_sponsor(self.env.company)
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_create_wizard"
        )
        action["context"] = {"default_sponsor_id": self.commercial_partner_id.id}
        return action

    def action_regenerate_referral_code(self):
        if not self.env.user.has_group("sales_team.group_sale_manager"):
            raise AccessError(
                self.env._("Only sales administrators can change a referral code.")
            )
        for partner in self:
            partner.referral_code = generate_referral_code()
            partner.message_post(
                body=self.env._(
                    "Referral code changed to %(code)s.", code=partner.referral_code
                )
            )

    @api.model
    def _find_by_referral_code(self, codes):
        """Return ``{code: commercial partner}`` for the given codes."""
        codes = {code.strip().upper() for code in codes if code and code.strip()}
        if not codes:
            return {}
        partners = self.search_fetch(
            [("referral_code", "in", list(codes))],
            ["referral_code", "commercial_partner_id"],
        )
        return {
            partner.referral_code: partner.commercial_partner_id for partner in partners
        }

    def _fill_missing_referral_codes(self):
        """Give a code to the contacts that have none, in one query per
        batch (install on a database that already has contacts)."""
        cr = self.env.cr
        cr.execute("SELECT id FROM res_partner WHERE referral_code IS NULL")
        ids = [row[0] for row in cr.fetchall()]
        for start in range(0, len(ids), 10000):
            batch = ids[start : start + 10000]
            cr.execute(
                """
                UPDATE res_partner p SET referral_code = v.code
                  FROM unnest(%s::int[], %s::varchar[]) AS v(id, code)
                 WHERE p.id = v.id
                """,
                [batch, [generate_referral_code() for _i in batch]],
            )
        self.invalidate_model(["referral_code"])

    # ------------------------------------------------------------------
    # Lifecycle stages
    # ------------------------------------------------------------------

    @api.model
    def _read_group_lifecycle_stage_ids(self, stages, domain):
        # Every stage is a kanban column, even empty; there are a handful.
        return stages.search([])  # pylint: disable=no-search-all

    def write(self, vals):
        if "lifecycle_stage_id" in vals and not self.env.context.get(
            "lifecycle_automatic"
        ):
            vals = dict(vals, lifecycle_stage_date=fields.Datetime.now())
            vals.setdefault("lifecycle_stage_locked", True)
            moved = self.filtered(
                lambda p: p.lifecycle_stage_id.id != vals["lifecycle_stage_id"]
            )
            history = moved._prepare_lifecycle_history_values(
                vals["lifecycle_stage_id"], automatic=False
            )
            res = super().write(vals)
            self.env["partner.lifecycle.history"].sudo().create(history)
            return res
        return super().write(vals)

    def action_unlock_lifecycle_stage(self):
        self.write({"lifecycle_stage_locked": False})
        self._lifecycle_recompute()

    def _prepare_lifecycle_history_values(self, stage_id, automatic):
        """A history row each, in the current company (the stage moved is
        this company's)."""
        return [
            {
                "partner_id": partner.id,
                "from_stage_id": partner.lifecycle_stage_id.id,
                "to_stage_id": stage_id,
                "automatic": automatic,
                "user_id": self.env.uid,
                "company_id": self.env.company.id,
                "first_contact_source_id": partner.first_contact_source_id.id,
            }
            for partner in self
        ]

    def _lifecycle_recompute(self):
        """Move the commercial entities of these contacts to the stage their
        aggregates meet (see ``partner.lifecycle.engine``)."""
        self.env["partner.lifecycle.engine"]._recompute(self)

    @api.model
    def _cron_recompute_lifecycle_stages(self, batch_size=5000):
        """Kept for the scheduled action of databases installed before the
        engine had its own model (its record is ``noupdate``)."""
        return self.env["partner.lifecycle.engine"]._cron_recompute(batch_size)
