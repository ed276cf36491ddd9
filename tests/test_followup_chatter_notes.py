# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from datetime import date, timedelta

from freezegun import freeze_time
from markupsafe import Markup

from odoo.tests import tagged

from odoo.addons.mail.tools.discuss import Store

from ..models.chatter_notes import log_notes
from .followup_common import FollowupCommon

# Columns that differ between two notes by construction: the row, its
# document, the batch's random message id and the moments (compared apart).
PER_NOTE_COLUMNS = ("id", "res_id", "message_id", "date", "create_date", "write_date")


@tagged("post_install", "-at_install")
class TestFollowupChatterNotes(FollowupCommon):
    """The follow-up engine writes its chatter notes in SQL (see
    ``models/chatter_notes.py``): they must be the rows
    ``_message_log_batch`` creates and read the same in the chatter."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # The same name: the chatter shows the document's name on its notes.
        cls.other = cls._create_customer(cls.customer.name, user_id=cls.salesman.id)
        # What the engine's notes hold: markup, and values escaped into it.
        cls.body = Markup("%s<ul>%s</ul>") % (
            "Follow-up rule <Renewal> & co, step 'Call':",
            Markup("<li>%s</li>") % "activity 'Call' for Sally \"Own\", été",
        )

    maxDiff = None

    def _row(self, message):
        self.env.flush_all()
        self.env.cr.execute("SELECT * FROM mail_message WHERE id = %s", [message.id])
        return self.env.cr.dictfetchone()

    def _comparable(self, message):
        row = self._row(message)
        self.assertTrue(row["message_id"])
        kind = row["message_id"].split("-openerp-")[1]
        return {
            key: value for key, value in row.items() if key not in PER_NOTE_COLUMNS
        } | {"message_id_kind": kind}

    def _store_message(self, message):
        """``message`` as the chatter of its contact fetches and reads it."""
        messages = self.env["mail.message"]._message_fetch(
            [("model", "=", "res.partner"), ("res_id", "=", message.res_id)]
        )["messages"]
        self.assertIn(message, messages)
        data = Store(message, for_current_user=True).get_result()
        (values,) = (m for m in data["mail.message"] if m["id"] == message.id)
        ignored = {"id", "date", "create_date", "write_date", "res_id", "thread"}
        return {key: value for key, value in values.items() if key not in ignored}

    def _clear_chatter(self, *partners):
        for partner in partners:
            partner.message_ids.unlink()

    def test_note_is_the_row_message_log_batch_creates(self):
        self._clear_chatter(self.customer, self.other)
        # Read before: the note must show without any invalidation by hand.
        self.assertFalse(self.customer.message_ids)
        log_notes(self.env, [("res.partner", self.customer.id, self.body)])
        by_sql = self.customer.message_ids
        self.assertEqual(len(by_sql), 1)
        by_orm = self.other._message_log_batch({self.other.id: self.body})
        self.assertEqual(self._comparable(by_sql), self._comparable(by_orm))
        self.assertEqual(
            self._row(by_sql)["create_date"], self._row(by_orm)["create_date"]
        )
        self.assertLess(
            abs(self._row(by_sql)["date"] - self._row(by_orm)["date"]),
            timedelta(seconds=2),
        )
        self.assertEqual(by_sql.body, by_orm.body)
        self.assertIn("&lt;Renewal&gt; &amp; co", by_sql.body)
        self.assertEqual(self._store_message(by_sql), self._store_message(by_orm))

    @freeze_time("2026-12-01 10:00:00")
    def test_engine_notes_read_as_message_log_batch_notes(self):
        """A follow-up run's notes, on the contact and on the quotation, as
        ``_message_log_batch`` logs the same bodies."""
        self._rule(
            "subscription_end",
            [("Renewal call", -10, self.partner_plan, None)],
            name="Renewal",
            delay_type="calendar",
        )
        self.customer.subscription_end_date = date(2026, 12, 10)
        self._process_lifecycle_queue()
        self._clear_chatter(self.customer, self.other)
        self._run()
        note = self.customer.message_ids
        self.assertEqual(len(note), 1, note.mapped("body"))
        self.assertIn("Follow-up rule Renewal, step Renewal call", note.body)
        by_orm = self.other._message_log_batch({self.other.id: note.body})
        self.assertEqual(self._comparable(note), self._comparable(by_orm))
        self.assertEqual(self._store_message(note), self._store_message(by_orm))
