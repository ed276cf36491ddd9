# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.exceptions import UserError, ValidationError
from odoo.tests import tagged

from .common import ReferralCommon

FORGED_STATES = ("in_progress", "won", "rewarded", "lost", "rejected", "to_review")


@tagged("post_install", "-at_install")
class TestReferralStateThroughActions(ReferralCommon):
    """A referral's state and what goes with it (dates, first order, review,
    the referee's consent) are set by its actions and flows only: never by
    the values of a create or a write, whoever the user, superuser
    included. The actions check who may run them."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.paid_order = cls._confirm_order(cls._create_customer("Paid Ltd"))
        cls.forged_values = [{"state": state} for state in FORGED_STATES] + [
            {"date_in_progress": "2026-01-05 10:00:00"},
            {"date_won": "2026-01-05 10:00:00"},
            {"date_rewarded": "2026-01-05 10:00:00"},
            {"date_closed": "2026-01-05 10:00:00"},
            {"first_order_id": cls.paid_order.id},
            {"review_reason": "Looks fine"},
            {"review_decision": "accepted"},
            {"referee_consent_date": "2026-01-05 10:00:00"},
            {"referee_consent_text": "They agreed"},
        ]

    def _users(self):
        """Whoever writes: a salesperson, a Sales administrator, the
        superuser (sudo) and the administrator."""
        return [
            self.Referral.with_user(self.salesman),
            self.Referral.with_user(self.sale_manager),
            self.Referral.sudo(),
            self.Referral.with_user(self.env.ref("base.user_admin")),
        ]

    def _counts(self):
        """What a refused call could write: referrals, contacts, activities,
        messages (the tracking pending from the set-up written first)."""
        self.env.flush_all()
        self.env.cr.precommit.run()
        return [
            self.env[model].with_context(active_test=False).search_count([])
            for model in (
                "referral.referral",
                "res.partner",
                "mail.activity",
                "mail.message",
            )
        ]

    # ------------------------------------------------------------- create

    def test_create_with_a_state_or_its_fields_refused_for_everybody(self):
        before = self._counts()
        for Referral in self._users():
            for values in self.forged_values:
                with (
                    self.subTest(user=Referral.env.user.login, values=values),
                    self.assertRefused(UserError, "starts as New.*never given"),
                ):
                    Referral.create(
                        dict(
                            {
                                "sponsor_id": self.sponsor.id,
                                "referee_company_name": "Forged Ltd",
                                "referee_email": "forged@forged.example.com",
                            },
                            **values,
                        )
                    )
        self.assertEqual(self._counts(), before, "nothing written")
        self.assertFalse(
            self.env["res.partner"].search([("name", "=", "Forged Ltd")]),
            "no referee created before the refusal",
        )

    def test_defaults_count_as_given(self):
        """A default is the caller's too: a ``default_*`` context key (any
        RPC sets one) or a user default."""
        values = {"sponsor_id": self.sponsor.id, "referee_company_name": "Default Ltd"}
        Referral = self.Referral.with_user(self.salesman)
        before = self._counts()
        for context in (
            {"default_state": "won"},
            {"default_first_order_id": self.paid_order.id},
            {"default_date_rewarded": "2026-01-05 10:00:00"},
        ):
            with (
                self.subTest(context=context),
                self.assertRefused(UserError, "starts as New"),
            ):
                Referral.with_context(**context).create(values)
        self.env["ir.default"].set(
            "referral.referral", "state", "rewarded", user_id=self.salesman.id
        )
        with self.assertRefused(UserError, "starts as New"):
            Referral.create(values)
        self.assertEqual(self._counts(), before)

    def test_refusal_names_the_fields(self):
        with self.assertRefused(UserError, "Status, Won On"):
            self._refer(state="won", date_won="2026-01-05 10:00:00")

    def test_create_as_new_still_passes_the_fraud_checks(self):
        """Giving the state New (what every referral starts in) is no
        forgery: the fraud checks still hold a suspicious referral."""
        referral = self.Referral.with_user(self.salesman).create(
            {
                "sponsor_id": self.sponsor.id,
                "state": "new",
                "referee_company_name": "Twin Corp",
                "referee_email": "twin@sponsor.example.com",
            }
        )
        self.assertEqual(referral.state, "to_review")
        self.assertFalse(referral.activity_ids)

    def test_created_through_a_contact_refused_too(self):
        """The contact's referrals (one2many) create and write through the
        referral: refused the same way."""
        referee = self._create_customer("Nested Ltd")
        before = self._counts()
        with self.assertRefused(UserError, "starts as New"):
            self.sponsor.with_user(self.salesman).write(
                {
                    "referral_ids": [
                        (0, 0, {"referee_id": referee.id, "state": "won"}),
                    ]
                }
            )
        self.assertEqual(self._counts(), before)
        referral = self._refer(referee_id=referee.id)
        with self.assertRefused(UserError, "change only through its buttons"):
            self.sponsor.with_user(self.salesman).write(
                {"referral_ids": [(1, referral.id, {"state": "won"})]}
            )
        self.assertEqual(referral.state, "new")

    def test_copy_starts_new(self):
        referral = self._refer()
        referral.action_start()
        referral.action_mark_lost()
        copy = referral.copy({"referee_company_name": "Copy Ltd", "referee_id": False})
        self.assertRecordValues(
            copy, [{"state": "new", "date_closed": False, "date_in_progress": False}]
        )
        before = self._counts()
        with self.assertRefused(UserError, "starts as New"):
            referral.with_user(self.salesman).copy(
                {
                    "referee_company_name": "Copy Two",
                    "referee_id": False,
                    "state": "won",
                }
            )
        self.assertEqual(self._counts(), before)

    # -------------------------------------------------------------- write

    def test_write_of_state_refused_whoever_writes(self):
        new = self._refer(referee_company_name="New Ltd")
        to_review = self._refer(
            referee_company_name="Held Ltd", referee_email="held@sponsor.example.com"
        )
        self.assertEqual(to_review.state, "to_review")
        before = self._counts()
        for Referral in self._users():
            for referral, values in (
                (to_review, {"state": "new"}),
                (new, {"state": "won"}),
                (new, {"state": "rewarded", "date_rewarded": "2026-01-05"}),
                (new, {"first_order_id": self.paid_order.id}),
                (new, {"date_in_progress": "2026-01-05 10:00:00"}),
                (to_review, {"review_reason": False}),
                (to_review, {"review_decision": "accepted"}),
                (new, {"referee_consent_date": "2026-01-05 10:00:00"}),
            ):
                with (
                    self.subTest(user=Referral.env.user.login, values=values),
                    self.assertRefused(UserError, "change only through its buttons"),
                ):
                    Referral.browse(referral.id).write(values)
        self.assertEqual(self._counts(), before)
        self.assertRecordValues(
            new | to_review,
            [
                {"state": "new", "first_order_id": False, "date_in_progress": False},
                {
                    "state": "to_review",
                    "first_order_id": False,
                    "date_in_progress": False,
                },
            ],
        )
        self.assertTrue(to_review.review_reason)

    def test_write_of_unchanged_values_passes(self):
        """A client saving the values it read changes nothing: accepted."""
        referral = self._refer()
        referral.with_user(self.salesman).write(
            {"state": "new", "date_won": False, "referee_phone": "+32 2 111 11 11"}
        )
        self.assertEqual(referral.referee_phone, "+32 2 111 11 11")

    def test_forged_context_key_opens_nothing(self):
        """The context is the caller's (an RPC sets any key): no key lets a
        write through."""
        referral, _order = self._won_referral()
        for key in ("referral_action", "referral_flow", "action_flow"):
            with self.assertRefused(UserError, "are won"):
                referral.with_user(self.salesman).with_context(**{key: True}).write(
                    {"state": "new"}
                )
            with self.assertRefused(UserError, "are won"):
                referral.with_user(self.salesman).with_context(**{key: True}).write(
                    {"sponsor_id": self._create_customer("Other Sponsor").id}
                )
        self.assertEqual(referral.state, "rewarded")

    def test_mark_lost_takes_a_reason_only(self):
        referral = self._refer()
        with self.assertRaises(TypeError):
            referral.with_user(self.salesman).action_mark_lost(
                state="won", first_order_id=self.paid_order.id
            )
        self.assertRecordValues(referral, [{"state": "new", "first_order_id": False}])

    def _won_referral(self):
        referral = self._refer(referee_company_name="Winner Ltd")
        order = self._confirm_order(referral.referee_id)
        self.assertEqual(referral.state, "rewarded")
        return referral, order

    # ------------------------------------------------------------ actions

    def test_actions_move_the_state(self):
        """The buttons still do: contacted, lost with a reason, reopened,
        rejected; the order confirmation wins, the reward rewards, the
        cancellation reopens."""
        reason = self.env["referral.lost.reason"].create({"name": "Too small"})
        referral = self._refer()
        referral.with_user(self.salesman).action_start()
        self.assertEqual(referral.state, "in_progress")
        self.assertTrue(referral.date_in_progress)
        wizard = (
            self.env["referral.lost.wizard"]
            .with_user(self.salesman)
            .create({"referral_ids": referral.ids, "lost_reason_id": reason.id})
        )
        wizard.action_lost_reason_apply()
        self.assertRecordValues(
            referral, [{"state": "lost", "lost_reason_id": reason.id}]
        )
        referral.with_user(self.salesman).action_reset()
        self.assertRecordValues(
            referral, [{"state": "new", "lost_reason_id": False, "date_closed": False}]
        )
        referral.with_user(self.salesman).action_reject()
        self.assertEqual(referral.state, "rejected")
        referral.with_user(self.salesman).action_reset()
        order = self._confirm_order(referral.referee_id, user_id=self.salesman.id)
        self.assertRecordValues(
            referral, [{"state": "rewarded", "first_order_id": order.id}]
        )
        order._action_cancel()
        self.assertRecordValues(
            referral, [{"state": "in_progress", "first_order_id": False}]
        )

    def test_salesperson_cannot_review(self):
        referral = self._refer(referee_email="held@sponsor.example.com")
        for action in ("action_review_accept", "action_review_reject"):
            with self.assertRefused(UserError, "Only Sales administrators"):
                getattr(referral.with_user(self.salesman), action)()
        self.assertRecordValues(
            referral, [{"state": "to_review", "review_decision": False}]
        )

    def test_referral_rejected_at_review_reopened_by_a_manager_only(self):
        referral = self._refer(referee_email="held@sponsor.example.com")
        referral.with_user(self.sale_manager).action_review_reject()
        self.assertRecordValues(
            referral, [{"state": "rejected", "review_decision": "rejected"}]
        )
        with self.assertRefused(UserError, "rejected at review"):
            referral.with_user(self.salesman).action_reset()
        self.assertRecordValues(referral, [{"state": "rejected", "activity_ids": []}])
        referral.with_user(self.sale_manager).action_reset()
        self.assertRecordValues(
            referral, [{"state": "new", "review_decision": "accepted"}]
        )
        self.assertEqual(len(referral.activity_ids), 2)
        self.assertIn("reopened and accepted", referral.message_ids[:1].body)

    def test_referral_accepted_at_review_then_rejected_reopens_as_usual(self):
        """Rejected by its salesperson after a Sales administrator accepted
        it: its salesperson reopens it."""
        referral = self._refer(referee_email="held@sponsor.example.com")
        referral.with_user(self.sale_manager).action_review_accept()
        referral.with_user(self.salesman).action_reject()
        referral.with_user(self.salesman).action_reset()
        self.assertEqual(referral.state, "new")

    # -------------------------------------------------------------- fraud

    def test_changing_a_party_after_creation_is_checked_again(self):
        """Created innocent, then turned into the sponsor's twin: held for
        review, its calls cancelled."""
        referral = self._refer(referee_company_name="Innocent Ltd")
        self.assertEqual(len(referral.activity_ids), 2)
        twin = self._create_customer("Twin Ltd", email="twin@sponsor.example.com")
        referral.with_user(self.salesman).write({"referee_id": twin.id})
        self.assertEqual(referral.state, "to_review")
        self.assertIn("email domain", referral.review_reason)
        self.assertFalse(referral.activity_ids)
        innocent = self._refer(referee_company_name="Innocent Two")
        innocent.with_user(self.salesman).referee_email = "x@sponsor.example.com"
        self.assertEqual(innocent.state, "to_review")

    def test_reasons_accepted_at_review_do_not_hold_it_again(self):
        referral = self._refer(referee_email="held@sponsor.example.com")
        referral.with_user(self.sale_manager).action_review_accept()
        referral.with_user(self.salesman).referee_email = "other@sponsor.example.com"
        self.assertEqual(referral.state, "new", "the reason accepted already")
        self.sponsor.phone = "+32 2 999 99 99"
        referral.with_user(self.salesman).referee_phone = "+32 2 999 99 99"
        self.assertEqual(referral.state, "to_review", "a new reason: reviewed again")

    # ------------------------------------------------------------ bounds

    def test_referee_details_bounded_and_without_control_characters(self):
        before = self._counts()
        for values, message in (
            ({"referee_company_name": "A" * 100_000}, "too long"),
            ({"referee_contact_name": "B" * 129}, "too long"),
            ({"referee_phone": "1" * 65}, "too long"),
            ({"referee_email": "a" * 250 + "@x.example.com"}, "too long"),
            ({"referee_company_name": "Nul\x00Ltd"}, "not allowed"),
            ({"referee_company_name": "Esc\x1b[31mLtd"}, "not allowed"),
            ({"referee_email": "a\nb@x.example.com"}, "not allowed"),
        ):
            with (
                self.subTest(values=values),
                self.assertRefused(ValidationError, message),
            ):
                self.Referral.with_user(self.salesman).create(
                    dict({"sponsor_id": self.sponsor.id}, **values)
                )
        self.assertEqual(self._counts(), before)
        referral = self._refer()
        with self.assertRefused(ValidationError, "too long"):
            referral.with_user(self.salesman).referee_phone = "9" * 100
        self.assertFalse(referral.referee_phone)
