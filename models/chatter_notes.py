# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Chatter notes written in SQL, the rows ``mail.thread._message_log_batch``
creates: the engines log thousands of notes in one run, which the ORM
would create one ``mail.message`` at a time (sanitizing each body, filling
its defaults and invalidating its document in Python).

One place for the columns of such a note: the lifecycle engine's tracking
lines and the follow-up engine's notes both go through
``insert_notes_sql``. The tests compare their rows with the ones
``_message_log_batch`` creates, column by column.
"""

from markupsafe import escape

from odoo import fields
from odoo.tools import SQL
from odoo.tools.mail import generate_tracking_message_id

# What the chatter of a document caches about its messages.
THREAD_FIELDS = ["message_ids", "message_needaction", "message_needaction_counter"]


def insert_notes_sql(env, source, model, res_id, body, date=None):
    """SQL inserting one note per row of ``source`` (an SQL FROM item), on
    the document ``model``, ``res_id`` with ``body`` (SQL expressions over
    ``source``; a body as ``note_body`` gives it), by the current user and
    dated ``date`` (now by default), returning the messages' ``id`` and
    ``res_id``. The values are those of ``_message_log_batch``: internal
    notes without subject, document name or company, the author computed
    from the user, one tracking message id and reply-to for the batch, no
    signature."""
    author_id, email_from = env["mail.thread"]._message_compute_author(
        raise_on_email=False
    )
    now = env.cr.now()
    return SQL(
        """
        INSERT INTO mail_message (
            model, res_id, message_type, subtype_id, is_internal, body,
            author_id, email_from, reply_to, message_id, email_add_signature,
            date, create_uid, create_date, write_uid, write_date)
        SELECT %(model)s, %(res_id)s, 'notification', %(subtype)s, true,
               %(body)s, %(author)s, %(email_from)s, %(reply_to)s,
               %(message_id)s, false, %(date)s,
               %(uid)s, %(now)s, %(uid)s, %(now)s
          FROM %(source)s
        RETURNING id, res_id
        """,
        source=source,
        model=model,
        res_id=res_id,
        body=body,
        subtype=env["ir.model.data"]._xmlid_to_res_id("mail.mt_note"),
        author=author_id,
        email_from=email_from,
        # As mail.thread's batch log: given, not looked up per message.
        reply_to=env["mail.thread"]._notify_get_reply_to(default=email_from)[False],
        message_id=generate_tracking_message_id("message-notify"),
        # The ORM's default date (mail.message.date): now, to the second.
        date=date or fields.Datetime.now(),
        uid=env.uid,
        now=now,
    )


def note_body(env, body, _cache=None):
    """``body`` (text or Markup) as ``mail.message`` stores it: escaped as
    ``_message_log_batch`` does, sanitized as the ORM's create does.
    ``_cache``: a dict kept by the caller over a batch, the bodies of a run
    repeat."""
    body = escape(body or "")
    if _cache is not None and body in _cache:
        return _cache[body]
    Message = env["mail.message"]
    stored = Message._fields["body"].convert_to_column_insert(body, Message)
    if _cache is not None:
        _cache[body] = stored
    return stored


def log_notes(env, notes):
    """``notes``: (model, res_id, body) triples, one chatter note each, as
    ``_message_log_batch`` logs them, in one statement."""
    if not notes:
        return
    cache = {}
    models, res_ids, bodies = zip(
        *(
            (model, res_id, note_body(env, body, cache))
            for model, res_id, body in notes
        ),
        strict=True,
    )
    env.execute_query(
        insert_notes_sql(
            env,
            SQL(
                "unnest(%s::varchar[], %s::int[], %s::text[])"
                " AS note(model, res_id, body)",
                list(models),
                list(res_ids),
                list(bodies),
            ),
            SQL("note.model"),
            SQL("note.res_id"),
            SQL("note.body"),
        )
    )
    for model in set(models):
        invalidate_threads(
            env,
            model,
            [res_id for m, res_id in zip(models, res_ids, strict=True) if m == model],
        )


def invalidate_threads(env, model, res_ids):
    """What the ORM's message create invalidates on the documents."""
    env[model].browse(res_ids).invalidate_recordset(THREAD_FIELDS)
