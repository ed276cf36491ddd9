# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

"""The lifecycle engine: read the aggregates of commercial entities per
company, match them against the stages, write what changed and log the
moves; the full pass (install, criteria changed, *Recompute now*) and the
nightly incremental pass over what changed since the last run."""

import json
from collections import defaultdict
from datetime import datetime, timedelta
from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.tools import SQL, create_index

from ..chatter_notes import insert_notes_sql, invalidate_threads, note_body
from ..cron_batches import defer_on_conflict
from ..local_day import company_tz_sql
from ..referral.referral_referral import ACCEPTED_STATES

# Referrals a sponsor brought that its referee's order won.
WON_STATES = ("won", "rewarded")
# Columns of the aggregate query before the current lifecycle values: the
# entity, the company, whether its stage is locked there, the company's
# today, whether the company moves contacts back, the referrals brought and
# won, the share of invoices paid on time.
HEAD_COLUMNS = 8

RECOMPUTE_CRON = "sale_referral_lifecycle.ir_cron_recompute_lifecycle_stages"

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
    "lifecycle_first_order_date": "date",
    "lifecycle_renewal_count": "int",
    "lifecycle_referral_count": "int",
    "lifecycle_referral_won_count": "int",
    "lifecycle_paid_on_time_rate": "int",
    "lifecycle_window_figures": "varchar",
    "lifecycle_down_since": "timestamp",
}
LIFECYCLE_COLUMNS = tuple(LIFECYCLE_COLUMN_TYPES)
# The commercial entities: contacts without a parent and companies, also
# those under a parent company (subsidiaries are their own commercial entity).
COMMERCIAL_ENTITY_DOMAIN = ["|", ("parent_id", "=", False), ("is_company", "=", True)]


def company_value_sql(alias, column, company, sql_type=None):
    """SQL of the value of the ``company_dependent`` lifecycle ``column`` of
    ``alias`` (a res_partner row) in ``company`` (an id, or SQL of one), as
    its plain SQL type: NULL when the company has none. The lifecycle
    columns have no ``ir.default`` fallback, so this is the value the ORM
    reads, without the ORM's existence check of many2one targets."""
    key = company if isinstance(company, SQL) else SQL("%s", str(company))
    return SQL(
        "(%s->>(%s)::text)::%s",
        SQL.identifier(alias, column),
        key,
        SQL(sql_type or LIFECYCLE_COLUMN_TYPES[column]),
    )


# Start of the last pass of the nightly job that went to its end: the next
# pass recomputes what changed since.
LIFECYCLE_CRON_LAST_RUN = "sale_referral_lifecycle.lifecycle_cron_last_run"
# Start of the pass in progress (it runs in batches, over several calls).
LIFECYCLE_CRON_RUN_START = "sale_referral_lifecycle.lifecycle_cron_run_start"
# Transaction times of the job's own calls: the contacts it writes carry
# them as write_date, and are not "changed since the last run" for that.
LIFECYCLE_CRON_STAMPS = "sale_referral_lifecycle.lifecycle_cron_write_stamps"
# A transaction that started before a pass and committed after it wrote rows
# dated before the pass: contacts and orders written this long before the
# last run are read again.
WRITE_MARGIN = timedelta(hours=1)


class LifecycleMove(NamedTuple):
    """An automatic stage change of a commercial entity."""

    partner_id: int
    from_stage_id: int | None
    to_stage_id: int
    company_id: int | None
    source_id: int | None


class PartnerLifecycleEngine(models.AbstractModel):
    """The lifecycle recompute, called by the contacts (creation, Unlock
    Stage), the orders (state changes) and the nightly cron: read the
    aggregates of commercial entities, match them against the stages, store
    what changed and log the moves (``_move``).
    Set-based: a fixed number of queries per call, whatever the number of
    contacts."""

    _name = "partner.lifecycle.engine"
    _description = "Customer Lifecycle Engine"

    @api.model
    def _recompute(self, partners):
        """Move the commercial entities of ``partners`` to the stage their
        aggregates meet and store the aggregates: a fixed number of queries
        whatever their number, and only the contacts whose values change are
        written."""
        if not partners:
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
        stats = self._read_stats(partners.ids, stages, now)
        in_domain = self._match_domains(stages, stats)
        ranks = {stage.id: rank for rank, stage in enumerate(stages)}
        changes, moves, channels = [], [], {}
        # The columns some change alters: the others are left out of the
        # UPDATE (a first placement leaves several empty, a nightly pass
        # changes a few).
        changed_columns = set()
        for partner_stats in stats.values():
            current = partner_stats["current"]
            stage_id = current["lifecycle_stage_id"]
            if not partner_stats["locked"]:
                stage_id = self._decide_stage(
                    stages, ranks, partner_stats, now, in_domain
                )
            values = self._prepare_values(partner_stats, stage_id, now)
            key = (partner_stats["id"], partner_stats["company_id"])
            if values != current:
                changed_columns.update(
                    column
                    for column in LIFECYCLE_COLUMNS
                    if values[column] != current[column]
                )
                changes.append(
                    dict(
                        values,
                        id=partner_stats["id"],
                        company_id=partner_stats["company_id"],
                        moved=stage_id != current["lifecycle_stage_id"],
                    )
                )
            source_id = values["first_contact_source_id"]
            if source_id != current["first_contact_source_id"]:
                channels[key] = source_id
            if stage_id != current["lifecycle_stage_id"]:
                moves.append(
                    LifecycleMove(
                        partner_id=partner_stats["id"],
                        from_stage_id=current["lifecycle_stage_id"],
                        to_stage_id=stage_id,
                        company_id=partner_stats["company_id"],
                        source_id=source_id,
                    )
                )
        self._write_stats(
            changes,
            channels,
            [column for column in LIFECYCLE_COLUMNS if column in changed_columns],
        )
        self._move(moves, now, {stage.id: stage.name for stage in stages})

    @api.model
    def _target_stage(self, stages, stats, now, in_domain):
        """Id of the first of ``stages`` (highest sequence first) whose
        criteria a contact with these ``stats`` meets, or None."""
        for stage in stages:
            if stage.applies_to(stats["company_id"]) and stage.match(
                stats,
                now,
                not stage.partner_domain
                or (stats["id"], stats["company_id"]) in in_domain[stage.id],
            ):
                return stage.id
        return None

    @api.model
    def _decide_stage(self, stages, ranks, stats, now, in_domain):
        """Id of the stage an unlocked contact with these ``stats`` sits in
        after this pass: the stage its criteria meet (``_target_stage``),
        unless that is a move down that waits. A move down waits while the
        criteria of the current stage have lapsed for less than its
        minimum days (the lapse's start is kept in ``stats["down_since"]``,
        stored by ``_prepare_values``), and forever in a company that moves
        contacts only forward. A current stage archived, deleted or of
        another company holds nobody back. ``ranks``: ``{stage id: its
        position in stages}``, highest first. No stage fits (every stage
        has criteria): the current one stays. Context
        ``lifecycle_move_down_now``: a move down happens at once (a contact
        just unlocked takes the stage of its criteria)."""
        current_id = stats["current"]["lifecycle_stage_id"]
        target_id = self._target_stage(stages, stats, now, in_domain) or current_id
        current_rank = ranks.get(current_id)
        if (
            current_rank is None
            or ranks.get(target_id, -1) <= current_rank
            or not stages[current_rank].applies_to(stats["company_id"])
        ):
            return target_id
        if stats["move_back"] == "forward_only":
            return current_id
        if self.env.context.get("lifecycle_move_down_now"):
            return target_id
        down_since = stats["current"]["lifecycle_down_since"] or now
        if now - down_since < timedelta(days=stages[current_rank].min_days_before_down):
            stats["down_since"] = down_since
            return current_id
        return target_id

    @api.model
    def _prepare_values(self, stats, stage_id, now):
        """Values of the ``LIFECYCLE_COLUMNS`` of a commercial entity from its
        ``stats`` (see ``_read_stats``) and its stage: the first contact is
        set only when unknown, its channel too."""
        current = stats["current"]
        known = current["first_contact_date"]
        first_contact = known or stats["first_quotation_day"]
        first_order = stats["first_order_day"]
        moved = stage_id != current["lifecycle_stage_id"]
        return {
            "lifecycle_stage_id": stage_id,
            "lifecycle_stage_date": now if moved else current["lifecycle_stage_date"],
            "lifecycle_quotation_count": stats["quotation_count"],
            "lifecycle_order_count": stats["order_count"],
            "lifecycle_last_order_date": stats["last_order_date"],
            "subscription_end_date": stats["subscription_end_date"],
            "first_contact_date": first_contact,
            # A contact dated when it was created, without its channel,
            # takes the channel of its first quotation.
            "first_contact_source_id": current["first_contact_source_id"]
            or stats["first_source_id"],
            "first_contact_medium_id": current["first_contact_medium_id"]
            or stats["first_medium_id"],
            "lifecycle_converted": 100 if stats["order_count"] else 0,
            # Empty until converted: an average over contacts counts the
            # converted ones only.
            "lifecycle_days_to_client": (
                max(0, (first_order - first_contact).days)
                if first_order and first_contact
                else None
            ),
            "lifecycle_first_order_date": first_order,
            # Zero counts are not stored (read as 0): nothing to write for
            # most contacts.
            "lifecycle_renewal_count": stats["renewal_count"] or None,
            "lifecycle_referral_count": stats["referral_count"] or None,
            "lifecycle_referral_won_count": stats["referral_won_count"] or None,
            "lifecycle_paid_on_time_rate": stats["paid_on_time_rate"],
            "lifecycle_window_figures": self._window_figures_json(stats),
            # Set by _decide_stage while a move down waits.
            "lifecycle_down_since": stats.get("down_since"),
        }

    @api.model
    def _window_figures_json(self, stats):
        """The orders and revenue of the stages' time windows of a contact,
        as the JSON text stored for *Why this stage*: ``{"orders": {months:
        count}, "revenue": {months: amount}}``, or None when they are all
        zero (most contacts of a full pass: nothing to write for them)."""
        if not any(stats["orders_in"].values()) and not any(
            stats["revenue_in"].values()
        ):
            return None
        return json.dumps(
            {
                "orders": {str(m): int(v) for m, v in stats["orders_in"].items()},
                "revenue": {
                    str(m): round(float(v), 2) for m, v in stats["revenue_in"].items()
                },
            },
            sort_keys=True,
        )

    @api.model
    def _window_figures(self, value):
        """The ``(orders, revenue)`` dicts ``{months: figure}`` of a stored
        ``lifecycle_window_figures`` (see ``_window_figures_json``)."""
        figures = json.loads(value) if value else {}
        return (
            {int(m): v for m, v in figures.get("orders", {}).items()},
            {int(m): v for m, v in figures.get("revenue", {}).items()},
        )

    @api.model
    def _match_domains(self, stages, stats):
        """``{stage id: {(partner id, company id)} of the ``stats`` matching
        its extra conditions}`` for the stages that have some: one search
        per stage and company, in that company (the conditions may read
        company-dependent values)."""
        if not any(stage.partner_domain for stage in stages):
            return {}
        by_company = defaultdict(list)
        for partner_id, company_id in stats:
            by_company[company_id].append(partner_id)
        Partner = self.env["res.partner"].with_context(active_test=False)
        matches = defaultdict(set)
        for stage in stages:
            if not stage.partner_domain:
                continue
            for company_id, partner_ids in by_company.items():
                found = Partner.with_company(company_id).search(
                    stage.partner_domain + [("id", "in", partner_ids)]
                )
                matches[stage.id].update((pid, company_id) for pid in found.ids)
        return matches

    @api.model
    def _read_stats(self, partner_ids, stages, now):
        """Current lifecycle values and order aggregates of the commercial
        entities of the contacts ``partner_ids`` in each of their companies,
        in one query: ``{(partner id, company id): stats}``. The companies of
        an entity: those with orders of it, those where it has a stage or a
        first contact already (the company it was created in), its own
        company; the current company for an entity that has none of them.
        Each company's stats count its own orders only, amounts in its
        currency. Days (first contact, first order, subscription) are taken
        in the time zone of the company, today too."""
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
                ), company_tz AS (
                    SELECT company_id AS id, tz FROM (%(company_tz)s) AS ctz
                ), local_order AS (
                    -- The day of an order is the day in its company's time
                    -- zone, not in UTC.
                    SELECT so.*,
                           (so.date_order AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date
                               AS order_day,
                           (LEAST(so.create_date, so.date_order)
                               AT TIME ZONE 'UTC' AT TIME ZONE tz.tz)::date
                               AS contact_day
                      FROM sale_order so
                      JOIN company_tz tz ON tz.id = so.company_id
                ), orders AS (
                    -- Per commercial entity and company: each company's
                    -- orders only (amounts in its currency).
                    SELECT p.commercial_partner_id AS id,
                           so.company_id,
                           count(so.id) FILTER (
                               WHERE so.state IN ('sent', 'sale', 'cancel')),
                           count(so.id) FILTER (WHERE so.state = 'sale'),
                           max(so.date_order) FILTER (WHERE so.state = 'sale'),
                           min(so.contact_day),
                           min(so.order_day) FILTER (WHERE so.state = 'sale'),
                           (array_agg(so.source_id ORDER BY so.create_date, so.id))[1],
                           (array_agg(so.medium_id ORDER BY so.create_date, so.id))[1],
                           array_agg(so.order_day ORDER BY so.date_order, so.id)
                               FILTER (WHERE so.state = 'sale' AND s.months > 0),
                           array_agg(s.months ORDER BY so.date_order, so.id)
                               FILTER (WHERE so.state = 'sale' AND s.months > 0),
                           count(so.id) FILTER (
                               WHERE so.state = 'sale' AND so.is_renewal)
                           %(windows)s
                      FROM local_order so
                      JOIN res_partner p ON p.id = so.partner_id
                      LEFT JOIN subscription s ON s.order_id = so.id
                     WHERE p.commercial_partner_id IN (SELECT id FROM entity)
                     GROUP BY p.commercial_partner_id, so.company_id
                ), referrals AS (
                    -- Referrals brought, per sponsor entity and company.
                    %(referrals)s
                ), invoices AS (
                    -- Share of the invoices paid or due paid by their due
                    -- date, per customer entity and company.
                    %(invoices)s
                ), known AS (
                    -- The companies where the entity has lifecycle values
                    -- already (its first contact, its stage) or its own.
                    SELECT c.id,
                           jsonb_object_keys(
                               COALESCE(c.first_contact_date, '{}'::jsonb)
                               || COALESCE(c.lifecycle_stage_id, '{}'::jsonb)
                           )::int AS company_id
                      FROM res_partner c
                     WHERE c.id IN (SELECT id FROM entity)
                     UNION ALL
                    SELECT c.id, c.company_id
                      FROM res_partner c
                     WHERE c.id IN (SELECT id FROM entity)
                       AND c.company_id IS NOT NULL
                ), pair AS (
                    SELECT id, company_id FROM orders
                     UNION
                    SELECT id, company_id FROM known
                ), placed AS (
                    SELECT * FROM pair
                     UNION ALL
                    -- Known nowhere yet: placed in the current company.
                    SELECT entity.id, %(company)s FROM entity
                     WHERE NOT EXISTS (SELECT FROM pair WHERE pair.id = entity.id)
                )
                SELECT c.id, pc.company_id, %(locked)s,
                       (%(now)s::timestamp AT TIME ZONE 'UTC'
                           AT TIME ZONE ctz.tz)::date,
                       rc.lifecycle_move_back,
                       r.referral_count, r.won_count, i.on_time_rate,
                       %(current)s, o.*
                  FROM placed pc
                  JOIN res_partner c ON c.id = pc.id
                  -- Companies deleted since a value was stored are skipped.
                  JOIN company_tz ctz ON ctz.id = pc.company_id
                  JOIN res_company rc ON rc.id = pc.company_id
                  LEFT JOIN orders o
                         ON o.id = pc.id AND o.company_id = pc.company_id
                  LEFT JOIN referrals r
                         ON r.id = pc.id AND r.company_id = pc.company_id
                  LEFT JOIN invoices i
                         ON i.id = pc.id AND i.company_id = pc.company_id
                 ORDER BY c.id, pc.company_id
                """,
                ids=partner_ids,
                now=now,
                company=self.env.company.id,
                company_tz=company_tz_sql(),
                subscription_products=self.env["product.product"]
                .with_context(active_test=False)
                .search([("subscription_months", ">", 0)])
                .ids,
                windows=SQL("").join(SQL(", %s", column) for column in columns),
                referrals=self._referrals_sql(
                    any(
                        s.min_referral_count or s.min_referral_won_count for s in stages
                    )
                ),
                invoices=self._paid_on_time_sql(
                    now, any(s.min_paid_on_time_rate for s in stages)
                ),
                locked=company_value_sql(
                    "c", "lifecycle_stage_locked", SQL("pc.company_id"), "bool"
                ),
                current=SQL(", ").join(
                    company_value_sql("c", column, SQL("pc.company_id"))
                    for column in LIFECYCLE_COLUMNS
                ),
            )
        )
        stats = {}
        for row in rows:
            partner_id, company_id = row[0], row[1]
            current = dict(zip(LIFECYCLE_COLUMNS, row[HEAD_COLUMNS:], strict=False))
            # After the order aggregates' entity and company.
            aggregates = row[HEAD_COLUMNS + len(LIFECYCLE_COLUMNS) + 2 :]
            windows = aggregates[10:]
            stats[partner_id, company_id] = {
                "id": partner_id,
                "company_id": company_id,
                "locked": bool(row[2]),
                # Today in the time zone of the company.
                "today": row[3],
                "move_back": row[4] or "automatic",
                "referral_count": row[5] or 0,
                "referral_won_count": row[6] or 0,
                # None: no invoice paid or due yet.
                "paid_on_time_rate": row[7],
                "renewal_count": aggregates[9] or 0,
                "current": current,
                "quotation_count": aggregates[0] or 0,
                "order_count": aggregates[1] or 0,
                "last_order_date": aggregates[2],
                "first_quotation_day": aggregates[3],
                "first_order_day": aggregates[4],
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
                # A date given by hand or imported stays while no
                # subscription order sets one.
                "subscription_end_date": self._subscription_end(
                    aggregates[7], aggregates[8]
                )
                or current["subscription_end_date"],
            }
        return stats

    @api.model
    def _referrals_sql(self, used):
        """SQL of the rows ``(id, company_id, referral_count, won_count)``:
        the referrals brought by the entities of the aggregate query
        (``entity``) in each company, accepted and won. None when no stage
        reads them (``used``): the query skips the table."""
        if not used:
            return SQL(
                "SELECT NULL::int AS id, NULL::int AS company_id, "
                "NULL::int AS referral_count, NULL::int AS won_count WHERE false"
            )
        return SQL(
            """
            SELECT sp.commercial_partner_id AS id, r.company_id,
                   count(r.id) FILTER (WHERE r.state IN %s) AS referral_count,
                   count(r.id) FILTER (WHERE r.state IN %s) AS won_count
              FROM referral_referral r
              JOIN res_partner sp ON sp.id = r.sponsor_id
             WHERE sp.commercial_partner_id IN (SELECT id FROM entity)
             GROUP BY sp.commercial_partner_id, r.company_id
            """,
            ACCEPTED_STATES,
            WON_STATES,
        )

    @api.model
    def _paid_on_time_sql(self, now, used):
        """SQL of the rows ``(id, company_id, on_time_rate)``: per customer
        entity of the aggregate query and company, the percentage of its
        posted customer invoices paid by their due date (the day of the last
        reconciliation of their receivable lines), among those paid or
        overdue in the company's today. Invoices not yet due are not known
        yet; reversed ones (a credit note cancelled them) are left out.
        None when no stage reads it (``used``)."""
        if not used:
            return SQL(
                "SELECT NULL::int AS id, NULL::int AS company_id, "
                "NULL::int AS on_time_rate WHERE false"
            )
        return SQL(
            """
            SELECT m.commercial_partner_id AS id, m.company_id,
                   round(100.0 * count(m.id) FILTER (
                       WHERE paid.day <= m.invoice_date_due) / count(m.id)
                   )::int AS on_time_rate
              FROM account_move m
              JOIN company_tz tz ON tz.id = m.company_id
              LEFT JOIN LATERAL (
                  SELECT max(apr.max_date) AS day
                    FROM account_move_line aml
                    JOIN account_partial_reconcile apr
                      ON apr.debit_move_id = aml.id
                   WHERE aml.move_id = m.id
                     AND aml.display_type = 'payment_term'
              ) paid ON m.payment_state IN ('paid', 'in_payment')
             WHERE m.commercial_partner_id IN (SELECT id FROM entity)
               AND m.move_type = 'out_invoice'
               AND m.state = 'posted'
               AND m.payment_state NOT IN ('reversed', 'invoicing_legacy')
               AND (m.payment_state IN ('paid', 'in_payment')
                    OR m.invoice_date_due < (%s::timestamp AT TIME ZONE 'UTC'
                                             AT TIME ZONE tz.tz)::date)
             GROUP BY m.commercial_partner_id, m.company_id
            """,
            now,
        )

    @api.model
    def _subscription_end(self, order_dates, months):
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

    @api.model
    def _write_stats(self, changes, channels, columns=LIFECYCLE_COLUMNS):
        """Store the new ``LIFECYCLE_COLUMNS`` values (dicts with the
        partner's ``id``, the ``company_id`` they are for and whether the
        stage ``moved``) in one UPDATE: each contact whose stage or
        aggregates changed in some company is written once, every company's
        values merged into its jsonb columns (``company_dependent``), empty
        values removed as the ORM does. Only ``columns`` are written: a
        column no change alters is left out (its merge would rewrite the
        same jsonb). The columns are not tracked but the stage, logged by
        ``_move``. ``channels``: ``{(partner id, company id): first contact
        source}`` when it changed, copied to the history rows of that
        company."""
        if not changes or not columns:
            return
        values = SQL(", ").join(
            SQL("%s::%s[]", [row[column] for row in changes], SQL(sql_type))
            for column, sql_type in (
                ("id", "int"),
                ("company_id", "int"),
                ("moved", "bool"),
                *((column, LIFECYCLE_COLUMN_TYPES[column]) for column in columns),
            )
        )
        self.env.execute_query(
            SQL(
                """
                UPDATE res_partner p
                   SET %(assignments)s,
                       write_uid = CASE WHEN v.moved THEN %(uid)s
                                        ELSE p.write_uid END,
                       write_date = CASE WHEN v.moved THEN %(now)s
                                         ELSE p.write_date END
                  FROM (SELECT u.id, bool_or(u.moved) AS moved, %(objects)s
                          FROM unnest(%(values)s)
                               AS u(id, company_id, moved, %(columns)s)
                         GROUP BY u.id) v
                 WHERE p.id = v.id
                """,
                assignments=SQL(", ").join(
                    SQL(
                        "%(column)s = NULLIF(jsonb_strip_nulls("
                        "COALESCE(p.%(column)s, '{}'::jsonb) || v.%(column)s), "
                        "'{}'::jsonb)",
                        column=SQL.identifier(column),
                    )
                    for column in columns
                ),
                objects=SQL(", ").join(
                    SQL(
                        "jsonb_object_agg(u.company_id::text, u.%s) AS %s",
                        SQL.identifier(column),
                        SQL.identifier(column),
                    )
                    for column in columns
                ),
                uid=self.env.uid,
                now=self.env.cr.now(),
                values=values,
                columns=SQL(", ").join(map(SQL.identifier, columns)),
            )
        )
        self.env["res.partner"].invalidate_model([*columns, "write_uid", "write_date"])
        if not channels:
            return
        self.env.execute_query(
            SQL(
                """
                UPDATE partner_lifecycle_history h
                   SET first_contact_source_id = v.source_id
                  FROM unnest(%s::int[], %s::int[], %s::int[])
                       AS v(partner_id, company_id, source_id)
                 WHERE h.partner_id = v.partner_id
                   AND h.company_id = v.company_id
                """,
                [partner_id for partner_id, _company in channels],
                [company_id for _partner, company_id in channels],
                list(channels.values()),
            )
        )
        self.env["partner.lifecycle.history"].invalidate_model(
            ["first_contact_source_id"]
        )

    @api.model
    def _disable_jit(self):
        """No JIT compilation for the rest of the transaction (the batched
        passes call this first). The planner's estimates of the aggregate
        query are far above its real size (a row per company key of every
        contact's jsonb values, every order of the database before the join
        on the batch's entities), which puts it over ``jit_above_cost``:
        compiling it took about half of each batch's read (130 ms of 240 ms
        for 5,000 contacts), for a query that runs in milliseconds per
        thousand rows."""
        self.env.execute_query(SQL("SET LOCAL jit = off"))

    @api.model
    def _recompute_in_batches(self, partner_ids, batch_size=5000):
        """Recompute the commercial entities ``partner_ids`` a batch at a
        time, the cache emptied between batches: memory stays flat whatever
        their number (install hook)."""
        self._disable_jit()
        Partner = self.env["res.partner"].with_context(active_test=False)
        for start in range(0, len(partner_ids), batch_size):
            self._recompute(Partner.browse(partner_ids[start : start + batch_size]))
            self.env.invalidate_all()

    @api.model
    def _recompute_full_batch(self, batch_size=5000):
        """The full pass (time-based criteria move contacts too): one batch
        of commercial entities per call, in id order from where the previous
        call stopped; the cron runner calls again while some remain. The
        position is kept in a system parameter rather than on the contacts: a
        contact is written only when its stage or aggregates change. The last
        batch sets it back to 0, so the next pass starts from the first
        contact."""
        Param = self.env["ir.config_parameter"].sudo()
        last_id = int(Param.get_param(LIFECYCLE_CRON_CURSOR, 0))
        Partner = self.env["res.partner"].with_context(active_test=False)
        partners = Partner.search(
            COMMERCIAL_ENTITY_DOMAIN + [("id", ">", last_id)],
            limit=batch_size,
            order="id",
        )
        self._recompute(partners)
        remaining = 0
        if len(partners) == batch_size:
            remaining = Partner.search_count(
                COMMERCIAL_ENTITY_DOMAIN + [("id", ">", partners[-1].id)]
            )
        Param.set_param(LIFECYCLE_CRON_CURSOR, partners[-1].id if remaining else 0)
        self.env["ir.cron"]._notify_progress(done=len(partners), remaining=remaining)
        return remaining

    # ------------------------------------------------------------------
    # Dry run: what saving a stage's criteria would move
    # ------------------------------------------------------------------

    @api.model
    def _dry_run(self, stage, batch_size=5000):
        """``(entering, leaving)``: how many contacts of the current company
        would enter and leave ``stage`` (a stage being edited in a form, its
        criteria not saved) if it were saved, by the same decision as the
        recompute (``_decide_stage``; locked contacts stay, a company moving
        contacts only forward moves nobody down, a move down that would wait
        counts as leaving). A query per batch of contacts, nothing
        written."""
        self._disable_jit()
        self.env.flush_all()
        now = fields.Datetime.now()
        company_id = self.env.company.id
        Stage = self.env["partner.lifecycle.stage"].sudo()
        # sudo: as _recompute, the criteria apply whoever previews them.
        saved = Stage.search([])  # pylint: disable=no-search-all
        edited = stage._get_lifecycle_criteria()[0]._replace(id=stage._origin.id or -1)
        order = {s.id: (s.sequence, s.id) for s in saved}
        # An unsaved stage comes after the saved ones of its sequence.
        order[edited.id] = (stage.sequence, stage._origin.id or float("inf"))
        stages = sorted(
            [c for c in saved._get_lifecycle_criteria() if c.id != edited.id]
            + ([edited] if stage.active else []),
            key=lambda c: order[c.id],
            reverse=True,
        )
        ranks = {c.id: rank for rank, c in enumerate(stages)}
        rows = self.env.execute_query(
            SQL(
                "SELECT id FROM res_partner WHERE lifecycle_stage_id ? %s "
                "ORDER BY id",
                str(company_id),
            )
        )
        partner_ids = [row[0] for row in rows]
        entering = leaving = 0
        engine = self.with_context(lifecycle_move_down_now=True)
        for start in range(0, len(partner_ids), batch_size):
            stats = self._read_stats(
                partner_ids[start : start + batch_size], stages, now
            )
            stats = {key: value for key, value in stats.items() if key[1] == company_id}
            in_domain = self._match_domains(stages, stats)
            for partner_stats in stats.values():
                current = partner_stats["current"]["lifecycle_stage_id"]
                if partner_stats["locked"]:
                    continue
                target = engine._decide_stage(
                    stages, ranks, partner_stats, now, in_domain
                )
                if target == edited.id and current != edited.id:
                    entering += 1
                elif current == edited.id and target != edited.id:
                    leaving += 1
        return entering, leaving

    # ------------------------------------------------------------------
    # Logging the moves: history rows and chatter tracking
    # ------------------------------------------------------------------

    # Logging the automatic moves of the lifecycle engine: history rows and
    # chatter tracking lines.
    #
    # Why set-based: a full recompute moves up to every contact of the
    # database (100,000 in the benchmark). Through the ORM, each move would be
    # a ``write`` with field tracking: one message and one tracking value per
    # contact, created 100 at a time, plus the recompute of the tracking
    # bookkeeping. Here a batch of moves is one INSERT of history rows and one
    # statement that inserts the messages and their tracking lines, with the
    # same columns the ORM's ``_message_log_batch`` fills (author, subtype
    # note, internal, tracking message id, reply-to given once), so the
    # chatter reads them as the ORM's own tracking messages (see
    # ``tests/test_lifecycle_tracking.py``).

    @api.model
    def _move(self, moves, now, stage_names):
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
        Partner = self.env["res.partner"]
        Partner.invalidate_model(["lifecycle_history_ids"])
        # The first stage of a contact is no news for its chatter. Contacts
        # written in this transaction (Unlock Stage) have their stage change
        # tracked by the ORM already: logged once.
        orm_tracked = {
            partner_id
            for partner_id, values in self.env.cr.precommit.data.get(
                f"mail.tracking.{Partner._name}", {}
            ).items()
            if values and "lifecycle_stage_id" in values
        }
        self._log_tracking(
            [
                move
                for move in moves
                if move.from_stage_id and move.partner_id not in orm_tracked
            ],
            now,
            stage_names,
        )

    @api.model
    def _log_tracking(self, moves, now, stage_names):
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
        stage_names = {
            **stage_names,
            **{stage.id: stage.display_name for stage in Stage.browse(missing)},
        }
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
                ), message AS (%(insert_notes)s)
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
                insert_notes=insert_notes_sql(
                    self.env,
                    SQL("move"),
                    "res.partner",
                    SQL("move.partner_id"),
                    note_body(self.env, ""),
                    date=now,
                ),
                uid=uid,
                write_date=write_date,
                field=self.env["ir.model.fields"]
                ._get("res.partner", "lifecycle_stage_id")
                .id,
            )
        )
        invalidate_threads(self.env, "res.partner", [m.partner_id for m in moves])

    # ------------------------------------------------------------------
    # Nightly pass: what changed since the last run
    # ------------------------------------------------------------------

    # The nightly job recomputes what can have changed since its last run,
    # not every contact: the commercial entities
    #
    # - with a confirmed order whose date left the window of N months of a
    # stage (recent orders, revenue) since the last run;
    # - whose last confirmed order crossed a stage's maximum days since the
    # last order (every confirmed order dated at that distance: a superset);
    # - whose subscription ended since the last run (a day on each side: the
    # days are the companies' days);
    # - whose contacts or orders were written since the last run (other than
    # by this job itself), and those without a stage yet.
    #
    # Its first run, a stage criteria change (``_lifecycle_cron_request_full``:
    # saving criteria, *Recompute now*) start a full pass instead: the batched
    # walk over every commercial entity. The candidates come from one query on
    # indexed columns (the per-company lifecycle values of ``res_partner``
    # read through ``_lifecycle_company_values_sql``); the recompute itself
    # is ``_recompute``, unchanged.

    def init(self):
        # What the candidates are read by; sale_order.date_order is indexed
        # by sale (sale_order_date_order_id_idx).
        create_index(
            self.env.cr, "sale_order_write_date_index", "sale_order", ["write_date"]
        )
        create_index(
            self.env.cr, "res_partner_write_date_index", "res_partner", ["write_date"]
        )
        create_index(
            self.env.cr,
            "referral_referral_write_date_index",
            "referral_referral",
            ["write_date"],
        )
        create_index(
            self.env.cr,
            "account_move_write_date_index",
            "account_move",
            ["write_date"],
        )
        return super().init()

    @api.model
    def _lifecycle_company_values_sql(self, alias, column):
        """SQL of a ``(company, value)`` row source over the per-company values
        of the lifecycle ``column`` (``company_dependent``: a jsonb keyed by
        company id) of the contact ``alias``, values as text."""
        return SQL("jsonb_each_text(%s)", SQL.identifier(alias, column))

    @api.model
    def _lifecycle_cron_request_full(self):
        """Make the next call of the nightly job start a full pass from the
        first contact (the stage criteria changed, or *Recompute now*)."""
        # sudo: the stages' managers do not manage system parameters.
        Param = self.env["ir.config_parameter"].sudo()
        Param.set_param(LIFECYCLE_CRON_CURSOR, 0)
        Param.set_param(LIFECYCLE_CRON_LAST_RUN, False)

    @api.model
    @defer_on_conflict(RECOMPUTE_CRON)
    def _cron_recompute(self, batch_size=5000):
        """Nightly: one batch per call, the cron runner calls again while
        some remain (``ir.cron._notify_progress``). Without a last run, a
        full pass over every commercial entity (``super``); else only the
        candidates (see the class docstring), in id order from where the
        previous call stopped. The pass's start becomes the last run when its
        last batch is done."""
        self._disable_jit()
        Param = self.env["ir.config_parameter"].sudo()
        cursor = int(Param.get_param(LIFECYCLE_CRON_CURSOR, 0))
        last_run = Param.get_param(LIFECYCLE_CRON_LAST_RUN)
        if cursor:
            run_start = (
                fields.Datetime.to_datetime(Param.get_param(LIFECYCLE_CRON_RUN_START))
                or fields.Datetime.now()
            )
        else:
            run_start = fields.Datetime.now()
            Param.set_param(
                LIFECYCLE_CRON_RUN_START, fields.Datetime.to_string(run_start)
            )
        stamps = self._lifecycle_cron_stamps()
        if last_run:
            remaining = self._cron_recompute_changed(
                fields.Datetime.to_datetime(last_run),
                run_start,
                stamps,
                cursor,
                batch_size,
            )
        else:
            remaining = self._recompute_full_batch(batch_size)
        # The contacts this call wrote carry its transaction time.
        stamps.append(self.env.cr.now())
        if not remaining and not last_run:
            # A full pass rewrote the stage of most contacts: the statistics
            # the candidates query is planned with are refreshed now, not
            # whenever autovacuum comes by (a stale "all without a stage"
            # turns its index scans into scans of every contact). Those of
            # the stage only: the whole wide table took three times as long.
            self.env.execute_query(SQL("ANALYZE res_partner (lifecycle_stage_id)"))
        if not remaining:
            # Older stamps cannot be after any later run's start.
            stamps = [stamp for stamp in stamps if stamp >= run_start - WRITE_MARGIN]
            Param.set_param(
                LIFECYCLE_CRON_LAST_RUN, fields.Datetime.to_string(run_start)
            )
        Param.set_param(
            LIFECYCLE_CRON_STAMPS, ",".join(stamp.isoformat() for stamp in stamps)
        )
        return remaining

    @api.model
    def _lifecycle_cron_stamps(self):
        """Transaction times of the job's calls since before the last run."""
        value = self.env["ir.config_parameter"].sudo().get_param(LIFECYCLE_CRON_STAMPS)
        return [
            datetime.fromisoformat(stamp) for stamp in (value or "").split(",") if stamp
        ]

    @api.model
    def _cron_recompute_changed(self, since, until, stamps, cursor, batch_size):
        """Recompute the first ``batch_size`` candidates after ``cursor``
        (what can have changed between ``since`` and ``until``); return how
        many remain."""
        candidates = self._lifecycle_candidate_ids(since, until, stamps, cursor)
        batch, rest = candidates[:batch_size], candidates[batch_size:]
        Partner = self.env["res.partner"].with_context(active_test=False)
        self._recompute(Partner.browse(batch))
        self.env["ir.config_parameter"].sudo().set_param(
            LIFECYCLE_CRON_CURSOR, batch[-1] if rest else 0
        )
        self.env["ir.cron"]._notify_progress(done=len(batch), remaining=len(rest))
        return len(rest)

    @api.model
    def _lifecycle_time_windows(self, since, until, stages=None):
        """``[(from, to)]``: a confirmed order dated in one of these moved
        its customer across a time window of a stage between ``since`` and
        ``until`` (orders leaving an N-month window, last orders getting
        older than a maximum of days)."""
        if stages is None:
            # sudo: as _recompute, the criteria apply whoever runs the job.
            stages = self.env["partner.lifecycle.stage"].sudo().search([])  # pylint: disable=no-search-all
        spans = {
            relativedelta(months=stage.recent_order_months)
            for stage in stages
            if stage.min_recent_order_count
        }
        spans |= {
            relativedelta(months=stage.revenue_months)
            for stage in stages
            if stage.min_revenue
        }
        spans |= {
            relativedelta(days=stage.max_days_since_last_order)
            for stage in stages
            if stage.max_days_since_last_order
        }
        # A first order crossing a tenure: every confirmed order at that
        # distance (a superset).
        spans |= {
            relativedelta(months=stage.min_tenure_months)
            for stage in stages
            if stage.min_tenure_months
        }
        windows = {(since - span, until - span) for span in spans}
        return sorted(window for window in windows if window[0] < window[1])

    @api.model
    def _lifecycle_written_after_sql(self, written, stamps):
        """SQL: ``write_date`` after ``written`` and none of ``stamps``, as
        ranges between the stamps: the index skips the rows the job wrote
        (after a full pass, every contact moved) instead of reading them."""
        bounds = [written, *sorted(stamp for stamp in stamps if stamp > written)]
        return SQL(" OR ").join(
            [
                SQL("(write_date > %s AND write_date < %s)", start, stop)
                for start, stop in zip(bounds, bounds[1:], strict=False)
            ]
            + [SQL("write_date > %s", bounds[-1])]
        )

    @api.model
    def _lifecycle_candidate_parts(self, since, until, written, stages):
        """SQL row sources of contact ids whose referrals, invoices or waiting
        move down may have changed their stage between ``since`` and
        ``until`` (see ``_lifecycle_candidate_ids``): referrals written,
        customer invoices written or falling due (when a stage reads them),
        moves down waiting (a handful, on a partial index)."""
        # Waits ending between since and until (from a day earlier: a lapse
        # is stamped by the pass that saw it), per stage's days.
        parts = [
            SQL(
                "SELECT p.id FROM res_partner p, %s AS e(company_id, since) "
                "WHERE p.lifecycle_down_since IS NOT NULL AND (%s)",
                self._lifecycle_company_values_sql("p", "lifecycle_down_since"),
                SQL(" OR ").join(
                    SQL(
                        "(e.since::timestamp >= %s AND e.since::timestamp < %s)",
                        since - timedelta(days=days + 1),
                        until - timedelta(days=days),
                    )
                    for days in sorted({s.min_days_before_down for s in stages}) or [0]
                ),
            )
        ]
        if any(s.min_referral_count or s.min_referral_won_count for s in stages):
            parts.append(
                SQL(
                    "SELECT sponsor_id FROM referral_referral WHERE write_date > %s",
                    written,
                )
            )
        if any(stage.min_paid_on_time_rate for stage in stages):
            parts += [
                SQL(
                    "SELECT partner_id FROM account_move WHERE write_date > %s "
                    "AND move_type = 'out_invoice'",
                    written,
                ),
                # Unpaid invoices falling due count as late from then (a day
                # on each side: the days are the companies' days).
                SQL(
                    "SELECT partner_id FROM account_move "
                    "WHERE move_type = 'out_invoice' AND state = 'posted' "
                    "AND payment_state NOT IN ('paid', 'in_payment', 'reversed') "
                    "AND invoice_date_due >= %s AND invoice_date_due < %s",
                    since.date() - timedelta(days=1),
                    until.date() + timedelta(days=1),
                ),
            ]
        return parts

    @api.model
    def _lifecycle_candidate_ids(self, since, until, stamps, cursor=0):
        """Ids of the commercial entities (after ``cursor``) whose stage may
        have changed between ``since`` and ``until``, in id order: one query,
        each part on an index."""
        self.env.flush_all()
        written = since - WRITE_MARGIN
        # sudo: as _recompute, the criteria apply whoever runs the job.
        stages = self.env["partner.lifecycle.stage"].sudo().search([])  # pylint: disable=no-search-all
        windows = self._lifecycle_time_windows(since, until, stages)
        parts = [
            # Orders written (amounts, dates, customers...).
            SQL("SELECT partner_id FROM sale_order WHERE write_date > %s", written),
            # Contacts written, not by this job.
            SQL(
                "SELECT id FROM res_partner WHERE %s",
                self._lifecycle_written_after_sql(written, stamps),
            ),
            # Never staged, in any company (a company of its orders gets its
            # stage when they are written).
            SQL(
                "SELECT id FROM res_partner p WHERE p.lifecycle_stage_id IS NULL "
                "AND (p.parent_id IS NULL OR p.is_company)"
            ),
            # Subscriptions ended, in any company: today is a day in the
            # company's time zone.
            SQL(
                "SELECT p.id FROM res_partner p, %(ends)s AS e(company_id, day) "
                "WHERE p.subscription_end_date IS NOT NULL "
                "AND e.day::date >= %(start)s AND e.day::date < %(stop)s",
                ends=self._lifecycle_company_values_sql("p", "subscription_end_date"),
                start=since.date() - timedelta(days=1),
                stop=until.date() + timedelta(days=1),
            ),
        ]
        parts += [
            SQL(
                "SELECT partner_id FROM sale_order WHERE state = 'sale' "
                "AND date_order >= %s AND date_order < %s",
                start,
                stop,
            )
            for start, stop in windows
        ]
        parts += self._lifecycle_candidate_parts(since, until, written, stages)
        rows = self.env.execute_query(
            SQL(
                """
                SELECT DISTINCT p.commercial_partner_id
                  FROM res_partner p
                  JOIN (%s) AS changed(id) ON changed.id = p.id
                 WHERE p.commercial_partner_id > %s
                 ORDER BY p.commercial_partner_id
                """,
                SQL(" UNION ").join(parts),
                cursor,
            )
        )
        return [row[0] for row in rows]
