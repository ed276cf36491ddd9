# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import json

from odoo.tests import HttpCase, tagged
from odoo.tools import mute_logger

from .common import ReferralCommon


@tagged("post_install", "-at_install")
class TestReferralRpcAttacks(HttpCase, ReferralCommon):
    """What a salesperson tries with its own session and the browser's
    JSON-RPC (``/web/dataset/call_kw``), and with the import dialog: every
    forgery refused, nothing written."""

    def setUp(self):
        super().setUp()
        self.authenticate("ref_salesman", "ref_salesman")

    def _rpc(self, model, method, args, kwargs=None):
        """Call ``model.method(*args, **kwargs)`` as the web client does;
        return the decoded JSON-RPC answer."""
        self.env.flush_all()
        response = self.url_open(
            "/web/dataset/call_kw",
            data=json.dumps(
                {
                    "jsonrpc": "2.0",
                    "method": "call",
                    "id": 1,
                    "params": {
                        "model": model,
                        "method": method,
                        "args": args,
                        "kwargs": kwargs or {},
                    },
                }
            ),
            headers={"Content-Type": "application/json"},
        )
        self.assertEqual(response.status_code, 200)
        self.env.invalidate_all()
        return response.json()

    def _assert_refused(self, answer, error, regex):
        self.assertIn("error", answer, f"accepted: {answer.get('result')}")
        self.assertEqual(answer["error"]["data"]["name"], error)
        self.assertRegex(answer["error"]["data"]["message"], regex)

    def _counts(self):
        return [
            self.env[model].with_context(active_test=False).search_count([])
            for model in ("referral.referral", "res.partner", "mail.activity")
        ]

    def test_salesperson_forges_a_win_over_json_rpc(self):
        held = self._refer(
            referee_company_name="Held Ltd", referee_email="held@sponsor.example.com"
        )
        fresh = self._refer(referee_company_name="Fresh Ltd")
        self.assertEqual(held.state, "to_review")
        for referral, values in (
            (held, {"state": "new"}),
            (fresh, {"state": "won"}),
            (fresh, {"state": "rewarded"}),
            (fresh, {"state": "in_progress"}),
            (fresh, {"date_won": "2026-03-01 10:00:00"}),
        ):
            for context in ({}, {"referral_action": True}):
                with self.subTest(values=values, context=context):
                    self._assert_refused(
                        self._rpc(
                            "referral.referral",
                            "write",
                            [[referral.id], values],
                            {"context": context},
                        ),
                        "odoo.exceptions.UserError",
                        "change only through its buttons",
                    )
                    # As the form view saves.
                    self._assert_refused(
                        self._rpc(
                            "referral.referral",
                            "web_save",
                            [[referral.id], values],
                            {"specification": {"state": {}}, "context": context},
                        ),
                        "odoo.exceptions.UserError",
                        "change only through its buttons",
                    )
        self.assertRecordValues(
            held | fresh,
            [
                {"state": "to_review", "date_won": False},
                {"state": "new", "date_won": False},
            ],
        )

    def test_salesperson_creates_a_won_referral_over_json_rpc(self):
        before = self._counts()
        for values in (
            {"state": "won"},
            {"state": "rewarded"},
            {"state": "in_progress"},
            {"first_order_id": self._confirm_order(self._create_customer("P")).id},
        ):
            before = self._counts()
            with self.subTest(values=values):
                self._assert_refused(
                    self._rpc(
                        "referral.referral",
                        "create",
                        [
                            dict(
                                {
                                    "sponsor_id": self.sponsor.id,
                                    "referee_company_name": "Twin Ltd",
                                    "referee_email": "twin@sponsor.example.com",
                                },
                                **values,
                            )
                        ],
                    ),
                    "odoo.exceptions.UserError",
                    "starts as New",
                )
                self.assertEqual(self._counts(), before)

    def test_salesperson_forges_a_state_through_a_default_over_json_rpc(self):
        before = self._counts()
        self._assert_refused(
            self._rpc(
                "referral.referral",
                "create",
                [{"sponsor_id": self.sponsor.id, "referee_company_name": "Def Ltd"}],
                {"context": {"default_state": "rewarded"}},
            ),
            "odoo.exceptions.UserError",
            "starts as New",
        )
        self.assertEqual(self._counts(), before)

    def test_json_rpc_creation_goes_through_the_fraud_checks(self):
        answer = self._rpc(
            "referral.referral",
            "create",
            [
                {
                    "sponsor_id": self.sponsor.id,
                    "referee_company_name": "Twin Ltd",
                    "referee_email": "twin@sponsor.example.com",
                }
            ],
        )
        referral = self.Referral.browse(answer["result"])
        self.assertRecordValues(referral, [{"state": "to_review", "source": "backend"}])
        self.assertFalse(referral.activity_ids)

    def test_salesperson_reopens_a_referral_rejected_at_review(self):
        referral = self._refer(referee_email="held@sponsor.example.com")
        referral.with_user(self.sale_manager).action_review_reject()
        self._assert_refused(
            self._rpc("referral.referral", "action_reset", [[referral.id]]),
            "odoo.exceptions.UserError",
            "rejected at review",
        )
        self._assert_refused(
            self._rpc("referral.referral", "action_review_accept", [[referral.id]]),
            "odoo.exceptions.UserError",
            "Only Sales administrators",
        )
        self.assertRecordValues(referral, [{"state": "rejected", "activity_ids": []}])

    def test_private_flows_and_extra_arguments_refused(self):
        referral = self._refer()
        self._assert_refused(
            self._rpc(
                "referral.referral", "_flow_write", [[referral.id], {"state": "won"}]
            ),
            "odoo.exceptions.AccessError",
            "Private methods",
        )
        with mute_logger("odoo.http"):
            answer = self._rpc(
                "referral.referral",
                "action_mark_lost",
                [[referral.id]],
                {"state": "won", "first_order_id": 1},
            )
        self.assertIn("error", answer)
        self.assertEqual(referral.state, "new")

    def test_salesperson_swaps_referral_codes_over_json_rpc(self):
        other = self._create_customer("Other Customer")
        mine, theirs = self.sponsor.referral_code, other.referral_code
        for partner, code in (
            (self.sponsor, theirs),
            (self.sponsor_contact, "MINE2026"),
        ):
            self._assert_refused(
                self._rpc(
                    "res.partner", "write", [[partner.id], {"referral_code": code}]
                ),
                "odoo.exceptions.AccessError",
                "Only sales administrators",
            )
        self._assert_refused(
            self._rpc(
                "res.partner", "create", [{"name": "Thief", "referral_code": theirs}]
            ),
            "odoo.exceptions.AccessError",
            "Only sales administrators",
        )
        self.assertEqual(self.sponsor.referral_code, mine)
        self.assertEqual(other.referral_code, theirs)
        self.assertFalse(self.env["res.partner"].search([("name", "=", "Thief")]))

    def test_load_with_a_state_column_over_json_rpc(self):
        before = self._counts()
        answer = self._rpc(
            "referral.referral",
            "load",
            [
                ["sponsor_ref", "referee_company_name", "state"],
                [
                    [self.sponsor.referral_code, "Loaded One", "won"],
                    [self.sponsor.referral_code, "Loaded Two", "New"],
                ],
            ],
        )
        result = answer["result"]
        self.assertFalse(result["ids"])
        self.assertEqual(
            [(m["rows"]["from"], m["field"]) for m in result["messages"]],
            [(0, "state")],
        )
        self.assertEqual(self._counts(), before)

    # ------------------------------------------------------------- import

    def _import(self, header, rows, fields):
        content = "\n".join([",".join(header), *(",".join(row) for row in rows)])
        wizard = (
            self.env["base_import.import"]
            .with_user(self.salesman)
            .create(
                {
                    "res_model": "referral.referral",
                    "file": content.encode(),
                    "file_name": "referrals.csv",
                    "file_type": "text/csv",
                }
            )
        )
        options = {
            "has_headers": True,
            "quoting": '"',
            "separator": ",",
            "date_format": "%Y-%m-%d",
            "datetime_format": "%Y-%m-%d %H:%M:%S",
        }
        preview = wizard.parse_preview(options)
        self.assertFalse(preview.get("error"), preview.get("error"))
        return wizard.execute_import(fields, header, preview["options"])

    def test_import_file_with_state_columns_refused_row_by_row(self):
        order = self._confirm_order(self._create_customer("First Buyer"))
        code = self.sponsor.referral_code
        before = self._counts()
        result = self._import(
            ["Sponsor", "Company", "Email", "Status", "Won On", "First Order"],
            [
                [code, "Import One", "one@one.example.com", "Won", "", ""],
                [code, "Import Two", "two@two.example.com", "New", "", ""],
                [
                    code,
                    "Import Three",
                    "three@three.example.com",
                    "",
                    "2026-03-01 10:00:00",
                    order.name,
                ],
                [code, "Import Four", "four@four.example.com", "Rewarded", "", ""],
            ],
            [
                "sponsor_ref",
                "referee_company_name",
                "referee_email",
                "state",
                "date_won",
                "first_order_id",
            ],
        )
        self.assertFalse(result["ids"])
        # Each row named once, counted from 1 after the header: the import
        # dialog shows "Error at row <record>: <message>".
        errors = [
            (m["rows"]["from"], m["record"], m["field_name"])
            for m in result["messages"]
        ]
        self.assertEqual(
            errors,
            [
                (0, 1, "Status"),
                (2, 3, "Won On"),
                (2, 3, "First Order"),
                (3, 4, "Status"),
            ],
        )
        self.assertTrue(
            result["messages"][0]["message"].startswith(
                "The column Status cannot be imported"
            )
        )
        self.assertEqual(self._counts(), before, "nothing written")

    def test_import_refusal_reads_nothing(self):
        """The refusal is decided on the cells, before any query: cheap for
        a file of any length."""
        fields = ["sponsor_ref", "referee_company_name", "state"]
        rows = [[self.sponsor.referral_code, f"Company {i}", "Won"] for i in range(200)]
        Referral = self.Referral.with_user(self.salesman).with_context(import_file=True)
        Referral.load(fields, rows[:1])
        with self.assertQueryCount(0):
            result = Referral.load(fields, rows)
        self.assertEqual(len(result["messages"]), 200)
