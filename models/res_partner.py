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
        index=True,
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
        partners = self.search([("referral_code", "in", list(codes))])
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
