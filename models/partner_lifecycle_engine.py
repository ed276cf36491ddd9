# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from typing import NamedTuple

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.tools import SQL

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
# The commercial entities: contacts without a parent and companies, also
# those under a parent company (subsidiaries are their own commercial entity).
COMMERCIAL_ENTITY_DOMAIN = ["|", ("parent_id", "=", False), ("is_company", "=", True)]


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
    what changed and log the moves (see ``partner_lifecycle_engine_log.py``).
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
        in_domain = self._match_domains(stages, list(stats))
        changes, moves, channels = [], [], {}
        for partner_stats in stats.values():
            current = partner_stats["current"]
            stage_id = current["lifecycle_stage_id"]
            if not partner_stats["locked"]:
                # No stage fits (every stage has criteria): keep the current one.
                stage_id = (
                    self._target_stage(stages, partner_stats, now, in_domain)
                    or stage_id
                )
            values = self._prepare_values(partner_stats, stage_id, now)
            if values != current:
                changes.append(dict(values, id=partner_stats["id"]))
            source_id = values["first_contact_source_id"]
            if source_id != current["first_contact_source_id"]:
                channels[partner_stats["id"]] = source_id
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
        self._write_stats(changes, channels)
        self._move(moves, now, {stage.id: stage.name for stage in stages})

    @api.model
    def _target_stage(self, stages, stats, now, in_domain):
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
        }

    @api.model
    def _match_domains(self, stages, partner_ids):
        """``{stage id: ids of partner_ids matching its extra conditions}``
        for the stages that have some: one search each."""
        Partner = self.env["res.partner"].with_context(active_test=False)
        return {
            stage.id: set(
                Partner.search(stage.partner_domain + [("id", "in", partner_ids)]).ids
            )
            for stage in stages
            if stage.partner_domain
        }

    @api.model
    def _read_stats(self, partner_ids, stages, now):
        """Current lifecycle values and order aggregates of the commercial
        entities of the contacts ``partner_ids``, in one query: ``{partner
        id: stats}``. Days (first contact, first order, subscription) are
        taken in the time zone of each order's company, today in the
        contact's company's (the current company's when it has none)."""
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
                    SELECT rc.id, COALESCE(NULLIF(cp.tz, ''), 'UTC') AS tz
                      FROM res_company rc
                      JOIN res_partner cp ON cp.id = rc.partner_id
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
                    SELECT p.commercial_partner_id AS id,
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
                               FILTER (WHERE so.state = 'sale' AND s.months > 0)
                           %(windows)s
                      FROM local_order so
                      JOIN res_partner p ON p.id = so.partner_id
                      LEFT JOIN subscription s ON s.order_id = so.id
                     WHERE p.commercial_partner_id IN (SELECT id FROM entity)
                     GROUP BY p.commercial_partner_id
                )
                SELECT c.id, c.company_id, c.lifecycle_stage_locked,
                       (%(now)s::timestamp AT TIME ZONE 'UTC'
                           AT TIME ZONE COALESCE(ctz.tz, 'UTC'))::date,
                       %(current)s, o.*
                  FROM entity
                  JOIN res_partner c ON c.id = entity.id
                  LEFT JOIN company_tz ctz
                         ON ctz.id = COALESCE(c.company_id, %(company)s)
                  LEFT JOIN orders o ON o.id = c.id
                 ORDER BY c.id
                """,
                ids=partner_ids,
                now=now,
                company=self.env.company.id,
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
            current = dict(zip(LIFECYCLE_COLUMNS, row[4:], strict=False))
            aggregates = row[4 + len(LIFECYCLE_COLUMNS) + 1 :]
            windows = aggregates[9:]
            stats[partner_id] = {
                "id": partner_id,
                "company_id": row[1],
                "locked": row[2],
                # Today in the time zone of the contact's company.
                "today": row[3],
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
    def _write_stats(self, changes, channels):
        """Store the new ``LIFECYCLE_COLUMNS`` values (dicts with the
        partner's ``id``) in one UPDATE: each contact whose stage or
        aggregates changed is written once. The columns are not tracked but
        the stage, logged by ``_move``. ``channels``: ``{partner id: first
        contact source}`` when it changed, copied to the history rows (a
        related field the ORM would have recomputed)."""
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
        self.env["res.partner"].invalidate_model(
            [*LIFECYCLE_COLUMNS, "write_uid", "write_date"]
        )
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

    @api.model
    def _recompute_in_batches(self, partner_ids, batch_size=5000):
        """Recompute the commercial entities ``partner_ids`` a batch at a
        time, the cache emptied between batches: memory stays flat whatever
        their number (install hook)."""
        Partner = self.env["res.partner"].with_context(active_test=False)
        for start in range(0, len(partner_ids), batch_size):
            self._recompute(Partner.browse(partner_ids[start : start + batch_size]))
            self.env.invalidate_all()

    @api.model
    def _cron_recompute(self, batch_size=5000):
        """Nightly: time-based criteria move contacts. One batch of commercial
        entities per call, in id order from where the previous call stopped;
        the cron runner calls again while some remain. The position is kept
        in a system parameter rather than on the contacts: a contact is
        written only when its stage or aggregates change. The last batch sets
        it back to 0, so the next night starts from the first contact."""
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
