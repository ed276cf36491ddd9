# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import datetime, timedelta

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.tools import SQL, create_index

from .partner_lifecycle_engine import LIFECYCLE_CRON_CURSOR

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


class PartnerLifecycleEngine(models.AbstractModel):
    """The nightly job recomputes what can have changed since its last run,
    not every contact: the commercial entities

    - with a confirmed order whose date left the window of N months of a
      stage (recent orders, revenue) since the last run;
    - whose last confirmed order crossed a stage's maximum days since the
      last order (every confirmed order dated at that distance: a superset);
    - whose subscription ended since the last run (a day on each side: the
      days are the companies' days);
    - whose contacts or orders were written since the last run (other than
      by this job itself), and those without a stage yet.

    Its first run, a stage criteria change (``_lifecycle_cron_request_full``:
    saving criteria, *Recompute now*) start a full pass instead: the batched
    walk over every commercial entity. The candidates come from one query on
    indexed columns (the per-company lifecycle values of ``res_partner`` read
    through ``_lifecycle_company_values_sql``); the recompute itself is ``_recompute``,
    unchanged."""

    # One concern per file (see the class docstring); merged by the ORM.
    _inherit = "partner.lifecycle.engine"  # pylint: disable=consider-merging-classes-inherited

    def init(self):
        # What the candidates are read by; sale_order.date_order is indexed
        # by sale (sale_order_date_order_id_idx).
        create_index(
            self.env.cr, "sale_order_write_date_index", "sale_order", ["write_date"]
        )
        create_index(
            self.env.cr, "res_partner_write_date_index", "res_partner", ["write_date"]
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
    def _cron_recompute(self, batch_size=5000):
        """Nightly: one batch per call, the cron runner calls again while
        some remain (``ir.cron._notify_progress``). Without a last run, a
        full pass over every commercial entity (``super``); else only the
        candidates (see the class docstring), in id order from where the
        previous call stopped. The pass's start becomes the last run when its
        last batch is done."""
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
            remaining = super()._cron_recompute(batch_size)
        # The contacts this call wrote carry its transaction time.
        stamps.append(self.env.cr.now())
        if not remaining and not last_run:
            # A full pass rewrote the stage of most contacts: the statistics
            # the candidates query is planned with are refreshed now, not
            # whenever autovacuum comes by (a stale "all without a stage"
            # turns its index scans into scans of every contact).
            self.env.execute_query(SQL("ANALYZE res_partner"))
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
    def _lifecycle_time_windows(self, since, until):
        """``[(from, to)]``: a confirmed order dated in one of these moved
        its customer across a time window of a stage between ``since`` and
        ``until`` (orders leaving an N-month window, last orders getting
        older than a maximum of days)."""
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
    def _lifecycle_candidate_ids(self, since, until, stamps, cursor=0):
        """Ids of the commercial entities (after ``cursor``) whose stage may
        have changed between ``since`` and ``until``, in id order: one query,
        each part on an index."""
        self.env.flush_all()
        written = since - WRITE_MARGIN
        windows = self._lifecycle_time_windows(since, until)
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


class ResPartner(models.Model):
    """The index the nightly job finds the subscriptions ending with, here
    with the job: res_partner's lifecycle columns exist when its ``init``
    runs, not yet when the engine's does."""

    _inherit = "res.partner"  # pylint: disable=consider-merging-classes-inherited

    def init(self):
        create_index(
            self.env.cr,
            "res_partner_subscription_end_date_index",
            "res_partner",
            ["subscription_end_date"],
            where="subscription_end_date IS NOT NULL",
        )
        return super().init()
