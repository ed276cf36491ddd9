# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.tools import SQL

from .referral_code import CODE_MAX_LENGTH


class ReferralRetiredCode(models.Model):
    """A referral code no contact holds anymore (regenerated, replaced, its
    contact deleted or merged): it stays reserved, so that the links and
    messages already carrying it never lead to another contact."""

    _name = "referral.retired.code"
    _description = "Retired Referral Code"
    _order = "id desc"
    _rec_name = "code"

    code = fields.Char(required=True, readonly=True, size=CODE_MAX_LENGTH)
    partner_id = fields.Many2one(
        "res.partner",
        string="Last Holder",
        readonly=True,
        index="btree_not_null",
        ondelete="set null",
        help="The contact that held the code last (empty once deleted).",
    )

    _sql_constraints = [
        (
            "code_unique",
            "UNIQUE(code)",
            "This referral code is already retired.",
        ),
    ]

    @api.model
    def _retire(self, codes_by_partner):
        """Reserve the codes of ``codes_by_partner`` ({contact: code}) for
        good; a code already retired keeps its row. One statement, safe
        against a concurrent retirement of the same code."""
        pairs = [
            (partner.id, code) for partner, code in codes_by_partner.items() if code
        ]
        if not pairs:
            return
        self.env.execute_query(
            SQL(
                """
                INSERT INTO referral_retired_code
                       (code, partner_id, create_uid, create_date, write_uid,
                        write_date)
                SELECT v.code, v.partner_id, %(uid)s, %(now)s, %(uid)s, %(now)s
                  FROM unnest(%(ids)s::int[], %(codes)s::varchar[])
                       AS v(partner_id, code)
                    ON CONFLICT (code) DO NOTHING
                """,
                uid=self.env.uid,
                now=fields.Datetime.now(),
                ids=[pair[0] for pair in pairs],
                codes=[pair[1] for pair in pairs],
            )
        )
        self.invalidate_model()

    @api.model
    def _get_retired(self, codes, holders=None):
        """The codes among ``codes`` that are retired, except those whose
        last holder is one of ``holders`` (a code may go back to its
        holder, never to another contact). One query."""
        codes = [code for code in codes if code]
        if not codes:
            return set()
        rows = self.env.execute_query(
            SQL(
                """
                SELECT code FROM referral_retired_code
                 WHERE code = ANY(%s)
                   AND (partner_id IS NULL OR partner_id != ALL(%s))
                """,
                codes,
                list(holders.ids if holders else []),
            )
        )
        return {row[0] for row in rows}
