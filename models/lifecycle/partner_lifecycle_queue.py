# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import functools
import logging
import time
from collections import defaultdict

from odoo import api, fields, models
from odoo.tools import SQL

from ..cron_batches import retrigger, run_in_savepoints, try_in_savepoint

_logger = logging.getLogger(__name__)

QUEUE_CRON = "sale_referral_lifecycle.ir_cron_process_lifecycle_queue"
# A call of the queue's job: contacts done together (one recompute, one
# savepoint), and the seconds after which it starts no other chunk. A call
# pays a fixed cost (a new transaction: the caches read again), so a chunk
# is not much smaller than the batch that an ordinary load queues.
CHUNK_SIZE = 25
CALL_TIME_BUDGET = 2.0


class PartnerLifecycleQueue(models.Model):
    """What an order's change of state sets off after the transaction that
    changed it: the stage recompute of its customer and, for the follow-ups,
    the stop conditions of the order (chase activities of a confirmed or
    cancelled quotation) and the wake-up of the follow-up cron when its
    steps fall due. Sending, confirming or cancelling an order only adds a
    row here and wakes the queue's job (``ir.cron.trigger``), which does that
    work in batches within a minute: confirmation stays light."""

    _name = "partner.lifecycle.queue"
    _description = "Customer Lifecycle Recompute Queue"
    _order = "id"
    # A row lives for seconds and says nothing but its contact and order.
    _log_access = False

    partner_id = fields.Many2one(
        "res.partner", required=True, ondelete="cascade", readonly=True
    )
    order_id = fields.Many2one("sale.order", ondelete="set null", readonly=True)
    order_state = fields.Char(
        readonly=True, help="The state the order reached when it was queued."
    )
    queued_at = fields.Datetime(
        readonly=True,
        help="When the order changed state: the follow-ups count their delays "
        "from that day.",
    )

    @api.model
    def _enqueue(self, partners):
        """Queue the commercial entities of ``partners`` and wake the job."""
        self._insert_and_wake(
            partners,
            SQL(
                """
                INSERT INTO partner_lifecycle_queue (partner_id)
                SELECT DISTINCT commercial_partner_id
                  FROM res_partner
                 WHERE id = ANY(%s) AND commercial_partner_id IS NOT NULL
                """,
                partners.ids,
            ),
        )

    @api.model
    def _enqueue_orders(self, orders, state):
        """Queue ``orders``, which just reached ``state``, with their
        customers' commercial entities, and wake the job."""
        self._insert_and_wake(
            orders,
            SQL(
                """
                INSERT INTO partner_lifecycle_queue (
                    partner_id, order_id, order_state, queued_at)
                SELECT p.commercial_partner_id, o.id, %s, %s
                  FROM sale_order o
                  JOIN res_partner p ON p.id = o.partner_id
                 WHERE o.id = ANY(%s) AND p.commercial_partner_id IS NOT NULL
                """,
                state or None,
                fields.Datetime.now(),
                orders.ids,
            ),
        )

    @api.model
    def _insert_and_wake(self, records, insert):
        """Run ``insert`` (an INSERT of queue rows) and wake the job, in one
        statement: the rows and a trigger of the job, the row
        ``ir.cron._trigger`` creates, then its wake-up of the cron workers at
        commit. Why not ``ir.cron._trigger`` itself: this runs inside every
        order confirmation, and measured on a database with the addon, the
        rows' INSERT followed by ``_trigger()`` costs 3 queries (reading the
        cron's ``active``, then the ORM's INSERT of the trigger) against 1
        here. A contact may be queued twice: a row being processed by the
        job must not swallow a change it did not see (the job reads what was
        committed when it started)."""
        cron_id = self.env["ir.model.data"]._xmlid_to_res_id(
            QUEUE_CRON, raise_if_not_found=False
        )
        if not records or not cron_id:
            return
        self.env.execute_query(
            SQL(
                """
                WITH queued AS (%(insert)s RETURNING id)
                INSERT INTO ir_cron_trigger (
                    cron_id, call_at, create_uid, create_date, write_uid,
                    write_date)
                SELECT %(cron)s, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
                 WHERE EXISTS (SELECT 1 FROM queued)
                """,
                insert=insert,
                cron=cron_id,
                # As ir.cron._trigger: now, to the second.
                now=fields.Datetime.now(),
                uid=self.env.uid,
            )
        )
        # As ir.cron._trigger: wake the cron workers once committed.
        self.env.cr.postcommit.add(self.env["ir.cron"].browse(cron_id)._notifydb)

    @api.model
    def _cron_process(
        self, batch_size=50, chunk_size=CHUNK_SIZE, time_budget=CALL_TIME_BUDGET
    ):
        """Recompute the queued contacts, oldest first, a batch per call; the
        cron runner calls again while some remain. Rows taken by another
        worker are skipped; rows queued meanwhile wait for the next call.

        The batch is done in chunks of ``chunk_size`` contacts, and no chunk
        is started after ``time_budget`` seconds: the call commits soon,
        which posts the rewards done and releases the sponsors' wallets (a
        sponsor spending waits for them). A contact whose rewards go to a
        wallet that a concurrent transaction holds or changed since this call
        started keeps its rows for the next call, woken at once; the others'
        work commits."""
        started = time.monotonic()
        rows = self.env.execute_query(
            SQL(
                """
                SELECT id, partner_id, order_id, order_state, queued_at
                  FROM partner_lifecycle_queue
                 ORDER BY id
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED
                """,
                batch_size,
            )
        )
        by_partner = defaultdict(list)
        for row in rows:
            by_partner[row[1]].append(row)
        groups = list(by_partner.values())
        done, left = 0, []
        for start in range(0, len(groups), chunk_size):
            if start:
                if time.monotonic() - started >= time_budget:
                    break
                # What the chunks done left for the commit (tracking, cron
                # wake-ups) runs now: a savepoint rolled back clears it.
                self.env.flush_all()
                self.env.cr.precommit.run()
            chunk = groups[start : start + chunk_size]
            busy = self._lock_rewarded_rows([row for group in chunk for row in group])
            # Their rewards would fail or wait: left as they are.
            skipped = [group for group in chunk if group[0][1] in busy]
            given_up = run_in_savepoints(
                self.env,
                [group for group in chunk if group[0][1] not in busy],
                self._process_contacts,
            )
            left += skipped + given_up
            done += sum(len(group) for group in chunk) - sum(
                len(group) for group in skipped + given_up
            )
        if left:
            _logger.info(
                "%s contact(s) left for the next call: their sponsors' wallets "
                "are busy or changed meanwhile",
                len(left),
            )
            retrigger(self.env, QUEUE_CRON)
        remaining = self.env.execute_query(
            SQL("SELECT count(*) FROM partner_lifecycle_queue")
        )[0][0]
        self.env["ir.cron"]._notify_progress(done=done, remaining=remaining)
        return remaining

    @api.model
    def _lock_rewarded_rows(self, rows):
        """Lock what the rewards of ``rows`` will write, before the work of
        their contacts, in the ledger's order (the referrals, then their
        sponsors' wallets, each by ascending id). The wallets are locked,
        not marked (``referral.wallet._lock``): the rewards add credit, and
        a sponsor spending meanwhile waits for this call to commit, then
        goes on. A wallet held by another transaction is not waited for.
        Return the contacts (ids, as in ``rows``) whose rewards go to a
        wallet that another transaction holds, or changed since this one
        started (it cannot be locked in this transaction)."""
        orders = (
            self.env["sale.order"]
            .browse({row[2] for row in rows if row[2] and row[3] == "sale"})
            .exists()
        )
        referrals = orders._get_reward_referrals()
        if not referrals:
            return set()

        def lock_referrals():
            self.env.cr.execute(
                SQL(
                    "SELECT id FROM referral_referral WHERE id IN %s "
                    "ORDER BY id FOR UPDATE",
                    tuple(referrals.ids),
                ),
                log_exceptions=False,
            )

        if not try_in_savepoint(self.env, lock_referrals):
            return set()  # the savepoints of the contacts sort it out
        wallets = (
            self.env["referral.wallet"]
            .sudo()
            .search(
                [
                    ("partner_id", "in", referrals.sponsor_id.ids),
                    ("company_id", "in", referrals.company_id.ids),
                ],
                order="id",
            )
        )

        def lock(wallets):
            return try_in_savepoint(
                self.env, functools.partial(wallets._lock, mark=False, nowait=True)
            )

        if lock(wallets):
            return set()
        # One by one: which ones are busy or changed.
        stale = {
            (wallet.partner_id, wallet.company_id)
            for wallet in wallets
            if not lock(wallet)
        }
        stale_orders = {
            order.id
            for order in orders
            for referral in (
                order.sudo().referral_id
                | referrals.filtered(lambda r, o=order: r.first_order_id == o)
            )
            if (referral.sponsor_id, referral.company_id) in stale
        }
        return {row[1] for row in rows if row[2] in stale_orders}

    @api.model
    def _process_contacts(self, rows_by_contact):
        """The work of queue rows, given per contact (lists of rows as read
        by ``_cron_process``): stages recomputed, superseded follow-ups
        cancelled, the orders' changes processed, the rows deleted."""
        rows = [row for contact_rows in rows_by_contact for row in contact_rows]
        partners = (
            self.env["res.partner"]
            .with_context(active_test=False)
            .browse(sorted({row[1] for row in rows}))
        )
        self.env["partner.lifecycle.engine"]._recompute(partners)
        # A renewal confirmed moved the subscription end: the follow-ups
        # planned for the previous one go.
        partners.invalidate_recordset(["subscription_end_date"])
        self.env["partner.followup.engine"]._cancel_superseded_renewal_activities(
            partners
        )
        self._process_order_changes(rows)
        self.env.execute_query(
            SQL(
                "DELETE FROM partner_lifecycle_queue WHERE id = ANY(%s)",
                [row[0] for row in rows],
            )
        )

    @api.model
    def _process_order_changes(self, rows):
        """The orders' side of ``rows`` (queue rows as read by
        ``_cron_process``): per state reached, one call of the orders' hook
        (follow-up stop conditions and cron wake-ups, sponsors' rewards)."""
        by_state = defaultdict(dict)
        for _id, _partner, order_id, state, queued_at in rows:
            if order_id and state:
                # The earliest change of an order counts.
                by_state[state].setdefault(order_id, queued_at)
        Order = self.env["sale.order"].with_context(active_test=False)
        for state, moments in by_state.items():
            orders = Order.browse(list(moments)).exists()
            if orders:
                orders._on_queued_state_change(state, moments)
