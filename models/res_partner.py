# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import secrets
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError
from odoo.tools import SQL
from odoo.tools.mail import generate_tracking_message_id

from .referral_referral import ACTIVE_STATES

# No 0/O, 1/I/L: a code is read aloud and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8


def generate_referral_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


# Where the nightly recompute stopped (last commercial entity id done).
LIFECYCLE_CRON_CURSOR = "sale_referral_lifecycle.lifecycle_cron_last_partner_id"
# Columns of res_partner the lifecycle recompute stores, with their SQL types.
LIFECYCLE_COLUMN_TYPES = {
    "lifecycle_stage_id": "int",
    "lifecycle_stage_date": "timestamp",
    "lifecycle_quotation_count": "int",
    "lifecycle_order_count": "int",
    "lifecycle_last_order_date": "timestamp",
    "subscription_end_date": "date",
    "first_contact_date": "date",
    "first_contact_source_id": "int",
    "first_contact_medium_id": "int",
    "lifecycle_converted": "int",
    "lifecycle_days_to_client": "int",
}
LIFECYCLE_COLUMNS = tuple(LIFECYCLE_COLUMN_TYPES)


class LifecycleMove(NamedTuple):
    """An automatic stage change of a commercial entity."""

    partner_id: int
    from_stage_id: int | None
    to_stage_id: int
    company_id: int | None
    source_id: int | None


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
        aggregates meet and store the aggregates: a fixed number of queries
        whatever their number, and only the contacts whose values change are
        written."""
        if not self:
            return
        # The aggregates and the contacts are read with SQL.
        self.env.flush_all()
        now = fields.Datetime.now()
        # sudo: the criteria apply whoever triggers the recompute. A handful
        # of stages, all evaluated.
        stages = (
            self.env["partner.lifecycle.stage"]
            .sudo()
            .search([])  # pylint: disable=no-search-all
            ._get_lifecycle_criteria()
        )
        stats = self._lifecycle_read_stats(stages, now)
        in_domain = self._lifecycle_match_domains(stages, list(stats))
        changes, moves, channels = [], [], {}
        for partner_stats in stats.values():
            stage_id = partner_stats["current"]["lifecycle_stage_id"]
            if not partner_stats["locked"]:
                # No stage fits (every stage has criteria): keep the current one.
                stage_id = (
                    self._lifecycle_target_stage(stages, partner_stats, now, in_domain)
                    or stage_id
                )
            values = self._prepare_lifecycle_values(partner_stats, stage_id, now)
            if values != partner_stats["current"]:
                changes.append(dict(values, id=partner_stats["id"]))
            source_id = values["first_contact_source_id"]
            if source_id != partner_stats["current"]["first_contact_source_id"]:
                channels[partner_stats["id"]] = source_id
            if stage_id != partner_stats["current"]["lifecycle_stage_id"]:
                moves.append(
                    LifecycleMove(
                        partner_id=partner_stats["id"],
                        from_stage_id=partner_stats["current"]["lifecycle_stage_id"],
                        to_stage_id=stage_id,
                        company_id=partner_stats["company_id"],
                        source_id=values["first_contact_source_id"],
                    )
                )
        self._lifecycle_write_stats(changes, channels)
        self._lifecycle_move(moves, now, {stage.id: stage.name for stage in stages})

    @api.model
    def _lifecycle_target_stage(self, stages, stats, now, in_domain):
        """Id of the first of ``stages`` (highest sequence first) whose
        criteria a contact with these ``stats`` meets, or None."""
        for stage in stages:
            if stage.applies_to(stats["company_id"]) and stage.match(
                stats,
                now,
                not stage.partner_domain or stats["id"] in in_domain[stage.id],
            ):
                return stage.id
        return None

    @api.model
    def _prepare_lifecycle_values(self, stats, stage_id, now):
        """Values of the ``LIFECYCLE_COLUMNS`` of a commercial entity from its
        ``stats`` (see ``_lifecycle_read_stats``) and its stage: the first
        contact is set only when unknown."""
        current = stats["current"]
        known = current["first_contact_date"]
        first_quotation = stats["first_quotation_date"]
        first_contact = known or (first_quotation and first_quotation.date())
        first_order = stats["first_order_date"]
        moved = stage_id != current["lifecycle_stage_id"]
        return {
            "lifecycle_stage_id": stage_id,
            "lifecycle_stage_date": now if moved else current["lifecycle_stage_date"],
            "lifecycle_quotation_count": stats["quotation_count"],
            "lifecycle_order_count": stats["order_count"],
            "lifecycle_last_order_date": stats["last_order_date"],
            "subscription_end_date": stats["subscription_end_date"],
            "first_contact_date": first_contact,
            "first_contact_source_id": current["first_contact_source_id"]
            or (None if known else stats["first_source_id"]),
            "first_contact_medium_id": current["first_contact_medium_id"]
            or (None if known else stats["first_medium_id"]),
            "lifecycle_converted": 100 if stats["order_count"] else 0,
            # Empty until converted: an average over contacts counts the
            # converted ones only.
            "lifecycle_days_to_client": (
                max(0, (first_order.date() - first_contact).days)
                if first_order and first_contact
                else None
            ),
        }

    def _lifecycle_match_domains(self, stages, partner_ids):
        """``{stage id: ids of partner_ids matching its extra conditions}``
        for the stages that have some: one search each."""
        Partner = self.with_context(active_test=False)
        return {
            stage.id: set(
                Partner.search(stage.partner_domain + [("id", "in", partner_ids)]).ids
            )
            for stage in stages
            if stage.partner_domain
        }

    def _lifecycle_read_stats(self, stages, now):
        """Current lifecycle values and order aggregates of the commercial
        entities of these contacts, in one query: ``{partner id: stats}``."""
        order_windows = sorted(
            {s.recent_order_months for s in stages if s.min_recent_order_count}
        )
        revenue_windows = sorted({s.revenue_months for s in stages if s.min_revenue})
        columns = [
            SQL(
                "count(so.id) FILTER (WHERE so.state = 'sale' AND so.date_order >= %s)",
                now - relativedelta(months=months),
            )
            for months in order_windows
        ] + [
            SQL(
                "sum(so.amount_untaxed / COALESCE(NULLIF(so.currency_rate, 0), 1)) "
                "FILTER (WHERE so.state = 'sale' AND so.date_order >= %s)",
                now - relativedelta(months=months),
            )
            for months in revenue_windows
        ]
        rows = self.env.execute_query(
            SQL(
                """
                WITH entity AS (
                    SELECT DISTINCT commercial_partner_id AS id
                      FROM res_partner
                     WHERE id = ANY(%(ids)s)
                ), subscription AS (
                    -- Through the product index: the ids are given, else
                    -- the planner scans every order line.
                    SELECT sol.order_id, max(pt.subscription_months) AS months
                      FROM sale_order_line sol
                      JOIN product_product pp ON pp.id = sol.product_id
                      JOIN product_template pt ON pt.id = pp.product_tmpl_id
                     WHERE sol.product_id = ANY(%(subscription_products)s::int[])
                       AND sol.state = 'sale'
                     GROUP BY sol.order_id
                ), orders AS (
                    SELECT p.commercial_partner_id AS id,
                           count(so.id) FILTER (
                               WHERE so.state IN ('sent', 'sale', 'cancel')),
                           count(so.id) FILTER (WHERE so.state = 'sale'),
                           max(so.date_order) FILTER (WHERE so.state = 'sale'),
                           min(LEAST(so.create_date, so.date_order)),
                           min(so.date_order) FILTER (WHERE so.state = 'sale'),
                           (array_agg(so.source_id ORDER BY so.create_date, so.id))[1],
                           (array_agg(so.medium_id ORDER BY so.create_date, so.id))[1],
                           array_agg(so.date_order::date ORDER BY so.date_order, so.id)
                               FILTER (WHERE so.state = 'sale' AND s.months > 0),
                           array_agg(s.months ORDER BY so.date_order, so.id)
                               FILTER (WHERE so.state = 'sale' AND s.months > 0)
                           %(windows)s
                      FROM sale_order so
                      JOIN res_partner p ON p.id = so.partner_id
                      LEFT JOIN subscription s ON s.order_id = so.id
                     WHERE p.commercial_partner_id IN (SELECT id FROM entity)
                     GROUP BY p.commercial_partner_id
                )
                SELECT c.id, c.company_id, c.lifecycle_stage_locked, %(current)s,
                       o.*
                  FROM entity
                  JOIN res_partner c ON c.id = entity.id
                  LEFT JOIN orders o ON o.id = c.id
                 ORDER BY c.id
                """,
                ids=self.ids,
                subscription_products=self.env["product.product"]
                .with_context(active_test=False)
                .search([("subscription_months", ">", 0)])
                .ids,
                windows=SQL("").join(SQL(", %s", column) for column in columns),
                current=SQL(", ").join(
                    SQL.identifier("c", column) for column in LIFECYCLE_COLUMNS
                ),
            )
        )
        stats = {}
        for row in rows:
            partner_id = row[0]
            current = dict(zip(LIFECYCLE_COLUMNS, row[3:], strict=False))
            aggregates = row[3 + len(LIFECYCLE_COLUMNS) + 1 :]
            windows = aggregates[9:]
            stats[partner_id] = {
                "id": partner_id,
                "company_id": row[1],
                "locked": row[2],
                "current": current,
                "quotation_count": aggregates[0] or 0,
                "order_count": aggregates[1] or 0,
                "last_order_date": aggregates[2],
                "first_quotation_date": aggregates[3],
                "first_order_date": aggregates[4],
                "first_source_id": aggregates[5],
                "first_medium_id": aggregates[6],
                "orders_in": {
                    months: value or 0
                    for months, value in zip(order_windows, windows, strict=False)
                },
                "revenue_in": {
                    months: value or 0.0
                    for months, value in zip(
                        revenue_windows, windows[len(order_windows) :], strict=False
                    )
                },
                "subscription_end_date": self._lifecycle_subscription_end(
                    aggregates[7], aggregates[8]
                ),
            }
        return stats

    @api.model
    def _lifecycle_subscription_end(self, order_dates, months):
        """End of a subscription bought by confirmed orders of subscription
        products (their dates and months, oldest first): each order extends
        it by its months, from the later of its date and the current end."""
        end = None
        for order_date, order_months in zip(
            order_dates or (), months or (), strict=True
        ):
            end = max(order_date, end or order_date) + relativedelta(
                months=order_months
            )
        return end

    def _lifecycle_write_stats(self, changes, channels):
        """Store the new ``LIFECYCLE_COLUMNS`` values (dicts with the
        partner's ``id``) in one UPDATE: each contact whose stage or
        aggregates changed is written once. The columns are not tracked but
        the stage, logged by ``_lifecycle_move``. ``channels``: ``{partner
        id: first contact source}`` when it changed, copied to the history
        rows (a related field the ORM would have recomputed)."""
        if not changes:
            return
        values = SQL(", ").join(
            SQL("%s::%s[]", [row[column] for row in changes], SQL(sql_type))
            for column, sql_type in (("id", "int"), *LIFECYCLE_COLUMN_TYPES.items())
        )
        self.env.execute_query(
            SQL(
                """
                UPDATE res_partner p
                   SET %(assignments)s,
                       write_uid = CASE WHEN %(moved)s THEN %(uid)s
                                        ELSE p.write_uid END,
                       write_date = CASE WHEN %(moved)s THEN %(now)s
                                         ELSE p.write_date END
                  FROM unnest(%(values)s) AS v(id, %(columns)s)
                 WHERE p.id = v.id
                """,
                assignments=SQL(", ").join(
                    SQL("%s = v.%s", SQL.identifier(column), SQL.identifier(column))
                    for column in LIFECYCLE_COLUMNS
                ),
                # SET expressions read the row before the UPDATE.
                moved=SQL("p.lifecycle_stage_id IS DISTINCT FROM v.lifecycle_stage_id"),
                uid=self.env.uid,
                now=self.env.cr.now(),
                values=values,
                columns=SQL(", ").join(map(SQL.identifier, LIFECYCLE_COLUMNS)),
            )
        )
        self.invalidate_model([*LIFECYCLE_COLUMNS, "write_uid", "write_date"])
        if not channels:
            return
        self.env.execute_query(
            SQL(
                """
                UPDATE partner_lifecycle_history h
                   SET first_contact_source_id = v.source_id
                  FROM unnest(%s::int[], %s::int[]) AS v(partner_id, source_id)
                 WHERE h.partner_id = v.partner_id
                """,
                list(channels),
                list(channels.values()),
            )
        )
        self.env["partner.lifecycle.history"].invalidate_model(
            ["first_contact_source_id"]
        )

    def _lifecycle_move(self, moves, now, stage_names):
        """Record these automatic moves (``LifecycleMove``, the contacts
        already written): a history row each, in one INSERT, and a chatter
        tracking line each unless it is the contact's first stage."""
        if not moves:
            return
        self.env.execute_query(
            SQL(
                """
                INSERT INTO partner_lifecycle_history (
                    partner_id, from_stage_id, to_stage_id, date, automatic,
                    user_id, first_contact_source_id, company_id)
                SELECT v.partner_id, v.from_stage_id, v.to_stage_id, %s, true,
                       %s, v.source_id, v.company_id
                  FROM unnest(%s::int[], %s::int[], %s::int[], %s::int[],
                              %s::int[])
                       AS v(partner_id, from_stage_id, to_stage_id, source_id,
                            company_id)
                """,
                now,
                self.env.uid,
                [move.partner_id for move in moves],
                [move.from_stage_id for move in moves],
                [move.to_stage_id for move in moves],
                [move.source_id for move in moves],
                [move.company_id for move in moves],
            )
        )
        self.invalidate_model(["lifecycle_history_ids"])
        # The first stage of a contact is no news for its chatter. Contacts
        # written in this transaction (Unlock Stage) have their stage change
        # tracked by the ORM already: logged once.
        orm_tracked = {
            partner_id
            for partner_id, values in self.env.cr.precommit.data.get(
                f"mail.tracking.{self._name}", {}
            ).items()
            if values and "lifecycle_stage_id" in values
        }
        self._lifecycle_log_tracking(
            [
                move
                for move in moves
                if move.from_stage_id and move.partner_id not in orm_tracked
            ],
            now,
            stage_names,
        )

    def _lifecycle_log_tracking(self, moves, now, stage_names):
        """Log these moves in the contacts' chatter as field tracking does (a
        note with a tracking line each, as ``_message_log_batch`` creates
        them), in one statement: the ORM would insert the messages and their
        tracking lines 100 at a time."""
        if not moves:
            return
        Stage = (
            self.env["partner.lifecycle.stage"].sudo().with_context(active_test=False)
        )
        missing = {m.from_stage_id for m in moves} - set(stage_names)
        stage_names = dict(
            stage_names,
            **{stage.id: stage.display_name for stage in Stage.browse(missing)},
        )
        author_id, email_from = self._message_compute_author(raise_on_email=False)
        uid = self.env.uid
        write_date = self.env.cr.now()
        self.env.execute_query(
            SQL(
                """
                WITH move AS (
                    SELECT *
                      FROM unnest(%(partners)s::int[], %(from_ids)s::int[],
                                  %(to_ids)s::int[], %(from_names)s::varchar[],
                                  %(to_names)s::varchar[])
                           AS m(partner_id, from_stage_id, to_stage_id,
                                from_name, to_name)
                ), message AS (
                    INSERT INTO mail_message (
                        model, res_id, message_type, subtype_id, is_internal,
                        body, author_id, email_from, reply_to, message_id,
                        email_add_signature, date,
                        create_uid, create_date, write_uid, write_date)
                    SELECT %(model)s, move.partner_id, 'notification',
                           %(subtype)s, true, '', %(author)s, %(email_from)s,
                           %(reply_to)s, %(message_id)s, false, %(now)s,
                           %(uid)s, %(write_date)s, %(uid)s, %(write_date)s
                      FROM move
                    RETURNING id, res_id
                )
                INSERT INTO mail_tracking_value (
                    mail_message_id, field_id, old_value_integer,
                    new_value_integer, old_value_char, new_value_char,
                    create_uid, create_date, write_uid, write_date)
                SELECT message.id, %(field)s, move.from_stage_id,
                       move.to_stage_id, move.from_name, move.to_name,
                       %(uid)s, %(write_date)s, %(uid)s, %(write_date)s
                  FROM message
                  JOIN move ON move.partner_id = message.res_id
                """,
                partners=[m.partner_id for m in moves],
                from_ids=[m.from_stage_id for m in moves],
                to_ids=[m.to_stage_id for m in moves],
                from_names=[stage_names[m.from_stage_id] for m in moves],
                to_names=[stage_names[m.to_stage_id] for m in moves],
                model=self._name,
                subtype=self.env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
                author=author_id,
                email_from=email_from,
                # As mail.thread's batch log: given, not looked up per message.
                reply_to=self.env["mail.thread"]._notify_get_reply_to(
                    default=email_from
                )[False],
                message_id=generate_tracking_message_id("message-notify"),
                now=now,
                uid=uid,
                write_date=write_date,
                field=self.env["ir.model.fields"]
                ._get(self._name, "lifecycle_stage_id")
                .id,
            )
        )
        self.browse([m.partner_id for m in moves]).invalidate_recordset(
            ["message_ids", "message_needaction", "message_needaction_counter"]
        )

    @api.model
    def _cron_recompute_lifecycle_stages(self, batch_size=5000):
        """Nightly: time-based criteria move contacts. One batch of commercial
        entities per call, in id order from where the previous call stopped;
        the cron runner calls again while some remain. The position is kept
        in a system parameter rather than on the contacts: a contact is
        written only when its stage or aggregates change. The last batch sets
        it back to 0, so the next night starts from the first contact."""
        Param = self.env["ir.config_parameter"].sudo()
        last_id = int(Param.get_param(LIFECYCLE_CRON_CURSOR, 0))
        Partner = self.with_context(active_test=False)
        domain = [("parent_id", "=", False), ("id", ">", last_id)]
        partners = Partner.search(domain, limit=batch_size, order="id")
        partners._lifecycle_recompute()
        remaining = 0
        if len(partners) == batch_size:
            remaining = Partner.search_count(
                [("parent_id", "=", False), ("id", ">", partners[-1].id)]
            )
        Param.set_param(LIFECYCLE_CRON_CURSOR, partners[-1].id if remaining else 0)
        self.env["ir.cron"]._notify_progress(done=len(partners), remaining=remaining)
        return remaining
