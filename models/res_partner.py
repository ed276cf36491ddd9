# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import secrets
from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL

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

    lifecycle_stage_id = fields.Many2one(
        "partner.lifecycle.stage",
        tracking=True,
        index=True,
        copy=False,
        ondelete="restrict",
        group_expand="_read_group_lifecycle_stage_ids",
        help="Moves by itself with the stage criteria; a manual move locks it.",
    )
    lifecycle_stage_locked = fields.Boolean(
        string="Stage Locked",
        copy=False,
        tracking=True,
        help="Moved by hand: the stage criteria leave this contact alone until "
        "it is unlocked.",
    )
    lifecycle_stage_date = fields.Datetime(string="In Stage Since", copy=False)
    lifecycle_quotation_count = fields.Integer(
        string="Quotations Received", readonly=True, copy=False
    )
    lifecycle_order_count = fields.Integer(
        string="Confirmed Orders", readonly=True, copy=False
    )
    lifecycle_last_order_date = fields.Datetime(
        string="Last Order", readonly=True, copy=False
    )
    lifecycle_checked_on = fields.Date(readonly=True, copy=False)
    lifecycle_history_ids = fields.One2many(
        "partner.lifecycle.history", "partner_id", string="Stage History"
    )
    first_contact_date = fields.Date(
        copy=False,
        help="Set from the first quotation (or referral) when empty.",
    )
    first_contact_source_id = fields.Many2one("utm.source", copy=False)
    first_contact_medium_id = fields.Many2one("utm.medium", copy=False)
    lifecycle_converted = fields.Integer(
        string="Conversion Rate (%)",
        readonly=True,
        copy=False,
        aggregator="avg",
        help="100 once the contact confirmed an order, else 0: its average over "
        "contacts is their conversion rate.",
    )
    lifecycle_days_to_client = fields.Integer(
        string="Days to Client",
        readonly=True,
        copy=False,
        aggregator="avg",
        help="Days from the first contact to the first confirmed order.",
    )
    subscription_end_date = fields.Date(
        readonly=True,
        copy=False,
        help="End of the subscription bought through confirmed orders of "
        "subscription products.",
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
        return [
            {
                "partner_id": partner.id,
                "from_stage_id": partner.lifecycle_stage_id.id,
                "to_stage_id": stage_id,
                "automatic": automatic,
                "user_id": self.env.uid,
            }
            for partner in self
        ]

    def _lifecycle_recompute(self):
        """Move the commercial entities of these contacts to the stage their
        aggregates meet: a fixed number of queries whatever their number."""
        partners = self.commercial_partner_id
        if not partners:
            return
        Stage = self.env["partner.lifecycle.stage"].sudo()
        # A handful of stages, all evaluated.
        stages = Stage.search([], order="sequence desc, id desc")  # pylint: disable=no-search-all
        now = fields.Datetime.now()
        stats = partners._lifecycle_read_stats(stages, now)
        in_domain = {
            stage.id: set(
                self.with_context(active_test=False)
                .search(stage._get_partner_domain() + [("id", "in", partners.ids)])
                .ids
            )
            for stage in stages
            if stage._get_partner_domain()
        }
        partners._lifecycle_write_stats(stats, now)
        moves = defaultdict(list)
        for partner in partners.filtered(lambda p: not p.lifecycle_stage_locked):
            partner_stats = stats[partner.id]
            target = next(
                (
                    stage
                    for stage in stages
                    if stage.company_id in (partner.company_id, Stage.company_id)
                    and stage._match(
                        partner_stats,
                        now,
                        stage.id not in in_domain or partner.id in in_domain[stage.id],
                    )
                ),
                Stage,
            )
            # No stage fits (every stage has criteria): keep the current one.
            if target and target != partner.lifecycle_stage_id:
                moves[target].append(partner.id)
        for stage, partner_ids in moves.items():
            self.browse(partner_ids)._lifecycle_move(stage, now)

    def _lifecycle_move(self, stage, now):
        """Automatic move to ``stage``: one history row per contact and a
        chatter tracking line unless it is the contact's first stage, all in
        batch (the ORM's tracking would post one message at a time)."""
        history = self._prepare_lifecycle_history_values(stage.id, automatic=True)
        self.env["partner.lifecycle.history"].sudo().create(history)
        self.filtered("lifecycle_stage_id")._lifecycle_log_tracking(stage)
        self.with_context(lifecycle_automatic=True, tracking_disable=True).write(
            {"lifecycle_stage_id": stage.id, "lifecycle_stage_date": now}
        )

    def _lifecycle_log_tracking(self, stage):
        """Log the move of these contacts to ``stage`` in their chatter, as
        field tracking does, with one batch of messages."""
        if not self:
            return
        Tracking = self.env["mail.tracking.value"].sudo()
        field_info = self.fields_get(["lifecycle_stage_id"])["lifecycle_stage_id"]
        author_id, email_from = self._message_compute_author(raise_on_email=False)
        base_values = {
            "model": self._name,
            "author_id": author_id,
            "email_from": email_from,
            "message_type": "notification",
            "subtype_id": self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
            "is_internal": True,
            "body": "",
            # Given, as mail.thread's batch log does, not looked up per message.
            "reply_to": self.env["mail.thread"]._notify_get_reply_to(
                default=email_from
            )[False],
            "record_alias_domain_id": False,
            "record_company_id": False,
            "record_name": False,
        }
        messages = self.sudo()._message_create(
            [dict(base_values, res_id=partner.id) for partner in self]
        )
        # One INSERT for all the tracking lines (as commands they would be
        # inserted one by one).
        Tracking.create(
            [
                dict(
                    Tracking._create_tracking_values(
                        partner.lifecycle_stage_id,
                        stage,
                        "lifecycle_stage_id",
                        field_info,
                        partner,
                    ),
                    mail_message_id=message.id,
                )
                for partner, message in zip(self, messages, strict=True)
            ]
        )

    def _lifecycle_read_stats(self, stages, now):
        """Aggregates of the orders of these commercial entities, in one
        query: ``{partner id: stats}``."""
        order_windows, revenue_windows = stages._get_windows()
        columns = [
            SQL(
                "count(so.id) FILTER (WHERE so.state = 'sale' AND so.date_order >= %s)",
                now - relativedelta(months=months),
            )
            for months in sorted(order_windows)
        ] + [
            SQL(
                "sum(so.amount_untaxed / COALESCE(NULLIF(so.currency_rate, 0), 1)) "
                "FILTER (WHERE so.state = 'sale' AND so.date_order >= %s)",
                now - relativedelta(months=months),
            )
            for months in sorted(revenue_windows)
        ]
        self.env["sale.order"].flush_model()
        self.flush_model(["commercial_partner_id"])
        rows = self.env.execute_query(
            SQL(
                """
                SELECT p.commercial_partner_id,
                       count(so.id) FILTER (
                           WHERE so.state IN ('sent', 'sale', 'cancel')),
                       count(so.id) FILTER (WHERE so.state = 'sale'),
                       max(so.date_order) FILTER (WHERE so.state = 'sale'),
                       min(LEAST(so.create_date, so.date_order)),
                       min(so.date_order) FILTER (WHERE so.state = 'sale'),
                       (array_agg(so.source_id ORDER BY so.create_date, so.id))[1],
                       (array_agg(so.medium_id ORDER BY so.create_date, so.id))[1]
                       %s
                  FROM sale_order so
                  JOIN res_partner p ON p.id = so.partner_id
                 WHERE p.commercial_partner_id = ANY(%s)
                 GROUP BY p.commercial_partner_id
                """,
                SQL("").join(SQL(", %s", column) for column in columns),
                self.ids,
            )
        )
        subscriptions = self._lifecycle_read_subscription_ends()
        stats = {
            partner_id: {
                "quotation_count": 0,
                "order_count": 0,
                "last_order_date": None,
                "first_quotation_date": None,
                "first_order_date": None,
                "first_source_id": None,
                "first_medium_id": None,
                "orders_in": {},
                "revenue_in": {},
                "subscription_end_date": subscriptions.get(partner_id),
            }
            for partner_id in self.ids
        }
        for row in rows:
            partner_stats = stats[row[0]]
            partner_stats.update(
                quotation_count=row[1],
                order_count=row[2],
                last_order_date=row[3],
                first_quotation_date=row[4],
                first_order_date=row[5],
                first_source_id=row[6],
                first_medium_id=row[7],
            )
            windows = row[8:]
            for months, value in zip(sorted(order_windows), windows, strict=False):
                partner_stats["orders_in"][months] = value
            for months, value in zip(
                sorted(revenue_windows), windows[len(order_windows) :], strict=False
            ):
                partner_stats["revenue_in"][months] = value or 0.0
        return stats

    def _lifecycle_read_subscription_ends(self):
        """End of the subscription of each commercial entity: each confirmed
        order of a subscription product extends it by the product's months,
        from the later of the order date and the current end."""
        rows = self.env.execute_query(
            SQL(
                """
                SELECT p.commercial_partner_id, so.date_order::date,
                       max(pt.subscription_months)
                  FROM sale_order_line sol
                  JOIN sale_order so ON so.id = sol.order_id
                  JOIN res_partner p ON p.id = so.partner_id
                  JOIN product_product pp ON pp.id = sol.product_id
                  JOIN product_template pt ON pt.id = pp.product_tmpl_id
                 WHERE so.state = 'sale'
                   AND pt.subscription_months > 0
                   AND p.commercial_partner_id = ANY(%s)
                 GROUP BY p.commercial_partner_id, so.id, so.date_order
                 ORDER BY p.commercial_partner_id, so.date_order, so.id
                """,
                self.ids,
            )
        )
        ends = {}
        for partner_id, order_date, months in rows:
            start = max(order_date, ends.get(partner_id, order_date))
            ends[partner_id] = start + relativedelta(months=months)
        return ends

    def _lifecycle_write_stats(self, stats, now):
        """Store the aggregates (and the first contact when unknown) in one
        UPDATE: plain columns, nobody tracks them."""
        ids = list(stats)
        self.flush_model()
        self.env.execute_query(
            SQL(
                """
                UPDATE res_partner p
                   SET lifecycle_quotation_count = v.quotations,
                       lifecycle_order_count = v.orders,
                       lifecycle_last_order_date = v.last_order,
                       subscription_end_date = v.subscription_end,
                       lifecycle_checked_on = %s,
                       first_contact_date = COALESCE(
                           p.first_contact_date, v.first_quotation::date),
                       lifecycle_converted = CASE WHEN v.orders > 0
                           THEN 100 ELSE 0 END,
                       lifecycle_days_to_client = GREATEST(0,
                           v.first_order::date - COALESCE(
                               p.first_contact_date, v.first_quotation::date)),
                       first_contact_source_id = CASE
                           WHEN p.first_contact_date IS NULL
                           THEN COALESCE(p.first_contact_source_id, v.source_id)
                           ELSE p.first_contact_source_id END,
                       first_contact_medium_id = CASE
                           WHEN p.first_contact_date IS NULL
                           THEN COALESCE(p.first_contact_medium_id, v.medium_id)
                           ELSE p.first_contact_medium_id END
                  FROM unnest(%s::int[], %s::int[], %s::int[], %s::timestamp[],
                              %s::date[], %s::timestamp[], %s::timestamp[],
                              %s::int[], %s::int[])
                       AS v(id, quotations, orders, last_order, subscription_end,
                            first_quotation, first_order, source_id, medium_id)
                 WHERE p.id = v.id
                """,
                now.date(),
                ids,
                [stats[i]["quotation_count"] for i in ids],
                [stats[i]["order_count"] for i in ids],
                [stats[i]["last_order_date"] for i in ids],
                [stats[i]["subscription_end_date"] for i in ids],
                [stats[i]["first_quotation_date"] for i in ids],
                [stats[i]["first_order_date"] for i in ids],
                [stats[i]["first_source_id"] for i in ids],
                [stats[i]["first_medium_id"] for i in ids],
            )
        )
        self.invalidate_model(
            [
                "lifecycle_quotation_count",
                "lifecycle_order_count",
                "lifecycle_last_order_date",
                "subscription_end_date",
                "lifecycle_checked_on",
                "first_contact_date",
                "first_contact_source_id",
                "first_contact_medium_id",
                "lifecycle_converted",
                "lifecycle_days_to_client",
            ]
        )

    @api.model
    def _cron_recompute_lifecycle_stages(self, batch_size=5000):
        """Nightly: time-based criteria move contacts. One batch of the
        commercial entities not checked today per call; the cron runner
        calls again while some remain."""
        domain = [
            ("parent_id", "=", False),
            "|",
            ("lifecycle_checked_on", "=", False),
            ("lifecycle_checked_on", "<", fields.Date.context_today(self)),
        ]
        partners = self.with_context(active_test=False).search(
            domain, limit=batch_size, order="id"
        )
        partners._lifecycle_recompute()
        remaining = self.with_context(active_test=False).search_count(domain)
        self.env["ir.cron"]._notify_progress(done=len(partners), remaining=remaining)
        return remaining
