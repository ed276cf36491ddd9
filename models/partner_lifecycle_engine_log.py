# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models
from odoo.tools import SQL
from odoo.tools.mail import generate_tracking_message_id


class PartnerLifecycleEngine(models.AbstractModel):
    """Logging the automatic moves of the lifecycle engine: history rows and
    chatter tracking lines.

    Why set-based: a full recompute moves up to every contact of the
    database (100,000 in the benchmark). Through the ORM, each move would be
    a ``write`` with field tracking: one message and one tracking value per
    contact, created 100 at a time, plus the recompute of the tracking
    bookkeeping. Here a batch of moves is one INSERT of history rows and one
    statement that inserts the messages and their tracking lines, with the
    same columns the ORM's ``_message_log_batch`` fills (author, subtype
    note, internal, tracking message id, reply-to given once), so the
    chatter reads them as the ORM's own tracking messages (see
    ``tests/test_partner_lifecycle_tracking.py``)."""

    # One concern per file (see the class docstring); merged by the ORM.
    _inherit = "partner.lifecycle.engine"  # pylint: disable=consider-merging-classes-inherited

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
        stage_names = dict(
            stage_names,
            **{stage.id: stage.display_name for stage in Stage.browse(missing)},
        )
        author_id, email_from = self.env["res.partner"]._message_compute_author(
            raise_on_email=False
        )
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
                model="res.partner",
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
                ._get("res.partner", "lifecycle_stage_id")
                .id,
            )
        )
        self.env["res.partner"].browse(
            [m.partner_id for m in moves]
        ).invalidate_recordset(
            ["message_ids", "message_needaction", "message_needaction_counter"]
        )
