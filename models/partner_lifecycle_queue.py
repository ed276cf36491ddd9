# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.tools import SQL

QUEUE_CRON = "sale_referral_lifecycle.ir_cron_process_lifecycle_queue"


class PartnerLifecycleQueue(models.Model):
    """Commercial entities whose stage must be recomputed because one of
    their orders changed state. Sending or confirming an order only adds a
    row here and wakes the queue's job (``ir.cron.trigger``), which
    recomputes them in batches within a minute: confirmation stays light."""

    _name = "partner.lifecycle.queue"
    _description = "Customer Lifecycle Recompute Queue"
    _order = "id"
    # A row lives for seconds and says nothing but its contact.
    _log_access = False

    partner_id = fields.Many2one(
        "res.partner", required=True, ondelete="cascade", readonly=True
    )

    @api.model
    def _enqueue(self, partners):
        """Queue the commercial entities of ``partners`` and wake the job, in
        one statement: the rows and a trigger of the job (what
        ``ir.cron._trigger`` creates, inserted here with the rows because
        this runs inside every order confirmation). A contact may be queued
        twice: a row being processed by the job must not swallow a change
        it did not see (the job reads what was committed when it started)."""
        cron_id = self.env["ir.model.data"]._xmlid_to_res_id(
            QUEUE_CRON, raise_if_not_found=False
        )
        if not partners or not cron_id:
            return
        self.env.execute_query(
            SQL(
                """
                WITH queued AS (
                    INSERT INTO partner_lifecycle_queue (partner_id)
                    SELECT DISTINCT commercial_partner_id
                      FROM res_partner
                     WHERE id = ANY(%(ids)s) AND commercial_partner_id IS NOT NULL
                 RETURNING id
                )
                INSERT INTO ir_cron_trigger (
                    cron_id, call_at, create_uid, create_date, write_uid,
                    write_date)
                SELECT %(cron)s, %(now)s, %(uid)s, %(now)s, %(uid)s, %(now)s
                 WHERE EXISTS (SELECT 1 FROM queued)
                """,
                ids=partners.ids,
                cron=cron_id,
                # As ir.cron._trigger: now, to the second.
                now=fields.Datetime.now(),
                uid=self.env.uid,
            )
        )
        # As ir.cron._trigger: wake the cron workers once committed.
        self.env.cr.postcommit.add(self.env["ir.cron"].browse(cron_id)._notifydb)

    @api.model
    def _cron_process(self, batch_size=1000):
        """Recompute the queued contacts, oldest first, a batch per call; the
        cron runner calls again while some remain. Rows taken by another
        worker are skipped; rows queued meanwhile wait for the next call."""
        rows = self.env.execute_query(
            SQL(
                """
                SELECT id, partner_id
                  FROM partner_lifecycle_queue
                 ORDER BY id
                 LIMIT %s
                   FOR UPDATE SKIP LOCKED
                """,
                batch_size,
            )
        )
        if rows:
            partners = (
                self.env["res.partner"]
                .with_context(active_test=False)
                .browse(sorted({partner_id for _id, partner_id in rows}))
            )
            self.env["partner.lifecycle.engine"]._recompute(partners)
            # A renewal confirmed moved the subscription end: the follow-ups
            # planned for the previous one go.
            partners.invalidate_recordset(["subscription_end_date"])
            self.env["partner.followup.engine"]._cancel_superseded_renewal_activities(
                partners
            )
            self.env.execute_query(
                SQL(
                    "DELETE FROM partner_lifecycle_queue WHERE id = ANY(%s)",
                    [row_id for row_id, _partner in rows],
                )
            )
        remaining = self.env.execute_query(
            SQL("SELECT count(*) FROM partner_lifecycle_queue")
        )[0][0]
        self.env["ir.cron"]._notify_progress(done=len(rows), remaining=remaining)
        return remaining
