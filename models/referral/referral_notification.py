# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import time
from datetime import timedelta

from odoo import api, fields, models

NOTIFICATION_CRON = "sale_referral_lifecycle.ir_cron_send_referral_notifications"
# Seconds one call of the emails' job renders at most (then it stops, the
# next call goes on).
SEND_TIME_BUDGET = 1.0
# Seconds the job waits while the lifecycle queue holds orders.
SEND_YIELD_SECONDS = 5


class ReferralNotification(models.Model):
    """An email of the referral program waiting to be rendered and sent: the
    business flows (an order confirmed, a reward posted) only queue it; a cron
    renders it later and hands it to the mail queue. One row per template and
    record: an email is never sent twice for the same event (e.g. a credit's
    expiry reminder)."""

    _name = "referral.notification"
    _description = "Referral Email to Send"
    _order = "id"

    template_id = fields.Many2one(
        "mail.template", required=True, ondelete="cascade", index=True
    )
    res_model = fields.Char(required=True)
    res_id = fields.Many2oneReference(model_field="res_model", required=True)
    state = fields.Selection(
        [("queued", "Queued"), ("sent", "Sent")],
        default="queued",
        required=True,
        index=True,
    )

    _sql_constraints = [
        (
            "template_record_unique",
            "UNIQUE(template_id, res_model, res_id)",
            "An email is queued only once per template and record.",
        )
    ]

    @api.model
    def _queue(self, records, template_xmlid):
        """Queue the email of ``template_xmlid`` for each of ``records`` that
        did not get it yet, and wake the cron up."""
        if not records:
            return self.browse()
        template = self.env.ref(template_xmlid, raise_if_not_found=False)
        if not template:
            return self.browse()
        Notification = self.sudo()
        done = set(
            Notification.search(
                [
                    ("template_id", "=", template.id),
                    ("res_model", "=", records._name),
                    ("res_id", "in", records.ids),
                ]
            ).mapped("res_id")
        )
        notifications = Notification.create(
            [
                {
                    "template_id": template.id,
                    "res_model": records._name,
                    "res_id": record_id,
                }
                for record_id in records.ids
                if record_id not in done
            ]
        )
        if notifications:
            self.env.ref(NOTIFICATION_CRON).sudo()._trigger()
        return notifications

    @api.model
    def _cron_send(self, batch_size=50, time_budget=SEND_TIME_BUDGET):
        """Render the queued emails, oldest first: posted on the record's
        chatter when it has one (the sponsor sees it in its portal), else a
        plain email; the mail queue sends them.

        One call renders at most ``batch_size`` emails and stops after
        ``time_budget`` seconds: the cron thread is not held while other
        jobs wait (the lifecycle queue's rewards). When some remain, the
        call wakes the job again rather than reporting them to the cron
        runner, which would call again at once, up to ten times, before
        the jobs ready meanwhile. While the lifecycle queue holds orders
        (sponsors' rewards to post, which send these emails), the call
        renders nothing and comes back a few seconds later: the credit
        first, its email next."""
        cron = self.env.ref(NOTIFICATION_CRON).sudo()
        if self.env["partner.lifecycle.queue"].sudo().search_count([], limit=1):
            cron._trigger(fields.Datetime.now() + timedelta(seconds=SEND_YIELD_SECONDS))
            return True
        started = time.monotonic()
        queued = self.sudo().search([("state", "=", "queued")], limit=batch_size)
        sent = self.browse()
        for notification in queued:
            notification._send()
            sent |= notification
            if time.monotonic() - started >= time_budget:
                break
        sent.write({"state": "sent"})
        more = bool(self.sudo().search_count([("state", "=", "queued")], limit=1))
        if more:
            cron._trigger()
        self.env["ir.cron"]._notify_progress(done=len(sent), remaining=0)
        return more

    def _send(self):
        self.ensure_one()
        record = self.env[self.res_model].sudo().browse(self.res_id).exists()
        if not record:
            return
        template = self.template_id.sudo()
        if hasattr(record, "message_post_with_source") and template.partner_to:
            record.with_context(mail_notify_force_send=False).message_post_with_source(
                template,
                subtype_xmlid="mail.mt_comment",
                message_type="comment",
            )
        else:
            template.send_mail(record.id, force_send=False)
