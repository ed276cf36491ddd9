# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tests import tagged

from .common import ReferralCommon

# What the chatter reads of a message (ids, dates and the record aside).
MESSAGE_FIELDS = (
    "model",
    "message_type",
    "subtype_id",
    "is_internal",
    "body",
    "subject",
    "author_id",
    "email_from",
    "reply_to",
    "email_add_signature",
    "record_name",
    "record_alias_domain_id",
    "record_company_id",
    "partner_ids",
    "attachment_ids",
    "parent_id",
)


@tagged("post_install", "-at_install")
class TestPartnerLifecycleTracking(ReferralCommon):
    """The engine writes the chatter lines of automatic moves set-based (see
    ``models/lifecycle/partner_lifecycle_engine.py``): they must read exactly as
    the messages the ORM's field tracking logs."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.suspect = cls.env.ref("sale_referral_lifecycle.stage_suspect")
        cls.prospect = cls.env.ref("sale_referral_lifecycle.stage_prospect")

    def _tracking_message(self, partner):
        return partner.message_ids.filtered(
            lambda m: m.tracking_value_ids.field_id.name == "lifecycle_stage_id"
        )

    def _orm_tracked_move(self, partner, stage):
        """Move ``partner`` through the ORM, as any tracked field write."""
        partner.with_context(lifecycle_automatic=True).lifecycle_stage_id = stage
        self.env.flush_all()
        self.env.cr.precommit.run()
        partner.invalidate_recordset(["message_ids"])
        return self._tracking_message(partner)

    def _readable(self, message):
        values = message.read(list(MESSAGE_FIELDS))[0]
        del values["id"]
        # "<random.time.random-openerp-message-notify@host>": the kind only.
        values["message_id_kind"] = message.message_id.split("-openerp-")[1]
        values["tracking"] = [
            {key: value for key, value in line.items() if key != "id"}
            for line in message.tracking_value_ids._tracking_value_format()
        ]
        return values

    def test_engine_tracking_reads_as_orm_tracking(self):
        by_orm = self._create_customer("Tracked by the ORM")
        by_engine = self._create_customer("Tracked by the engine")
        (by_orm | by_engine)._lifecycle_recompute()
        # As if created in an earlier transaction: the ORM does not track
        # the records created in the current one.
        self.env.flush_all()
        self.env.cr.precommit.run()
        self.assertEqual(by_orm.lifecycle_stage_id, self.suspect)
        self.assertEqual(by_engine.lifecycle_stage_id, self.suspect)
        orm_message = self._orm_tracked_move(by_orm, self.prospect)
        self._create_order(by_engine).action_quotation_sent()
        self._process_lifecycle_queue()
        self.assertEqual(by_engine.lifecycle_stage_id, self.prospect)
        engine_message = self._tracking_message(by_engine)
        self.assertEqual(len(orm_message), 1)
        self.assertEqual(len(engine_message), 1)
        self.assertEqual(self._readable(engine_message), self._readable(orm_message))
        self.assertEqual(
            engine_message.tracking_value_ids.read(
                ["old_value_integer", "new_value_integer", "field_id"]
            )[0]
            | {"id": 0},
            orm_message.tracking_value_ids.read(
                ["old_value_integer", "new_value_integer", "field_id"]
            )[0]
            | {"id": 0},
        )
