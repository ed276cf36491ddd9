# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import re

from dateutil.relativedelta import relativedelta
from lxml import html as lxml_html

from odoo import fields
from odoo.exceptions import AccessError, UserError
from odoo.tests import Form, tagged

from .common import WalletCommon

REPORT = "sale_referral_lifecycle.action_report_referral_statement"
PARTNER_REPORT = "sale_referral_lifecycle.action_report_sponsor_statement"
STATEMENT_MODEL = "report.sale_referral_lifecycle.report_referral_statement"


@tagged("post_install", "-at_install")
class TestWalletStatement(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.today = fields.Date.context_today(cls.env["referral.wallet"])
        cls.Wizard = cls.env["referral.wallet.adjust.wizard"]

    def _history(self, wallet=None):
        """A wallet with, in the default period (12 months up to today):
        +50 expiring in 30 days, +70 expiring in 90 days, -30 spent (taken
        from the +50); before it +100 that never expires; and a pending
        reward of 40."""
        wallet = wallet or self._wallet()
        days = relativedelta(days=1)
        old = wallet._credit(100.0, name="Old reward", date=self.today - 420 * days)
        soon = wallet._credit(
            50.0,
            name="Reward expiring soon",
            date=self.today - 60 * days,
            expiry_date=self.today + 30 * days,
        )
        later = wallet._credit(
            70.0,
            name="Reward expiring later",
            date=self.today - 30 * days,
            expiry_date=self.today + 90 * days,
        )
        spent = wallet._debit(
            30.0, name="Spent on renewal", date=self.today - 10 * days
        )
        pending = wallet._credit(40.0, posted=False, name="Reward to approve")
        return wallet, old, soon, later, spent, pending

    def _render(self, report, records, data=None):
        content, _type = self.env["ir.actions.report"]._render_qweb_html(
            report, records.ids, data=data
        )
        return lxml_html.fromstring(content)

    def _text(self, element):
        # Negative amounts carry a zero-width no-break space after the sign.
        text = element.text_content().replace("\ufeff", "")
        return re.sub(r"\s+", " ", text).strip()

    def _named(self, document, name):
        return [self._text(e) for e in document.xpath(f"//*[@name='{name}']")]

    def _adjust(self, user, wallet, **values):
        return (
            self.Wizard.with_user(user)
            .create(dict({"wallet_id": wallet.id, "amount": 25.0}, **values))
            .action_apply()
        )

    # ------------------------------------------------------------------
    # Statement figures
    # ------------------------------------------------------------------

    def test_statement_values_for_default_period(self):
        wallet, old, soon, later, spent, pending = self._history()
        values = self.env[STATEMENT_MODEL]._get_report_values(wallet.ids)
        self.assertEqual(values["date_to"], self.today)
        self.assertEqual(
            values["date_from"], self.today - relativedelta(months=12, days=-1)
        )
        statement = values["statements"][wallet.id]
        self.assertEqual(statement["opening_balance"], 100.0)
        self.assertEqual(
            [line["transaction"] for line in statement["lines"]], [soon, later, spent]
        )
        self.assertEqual(
            [line["balance"] for line in statement["lines"]], [150.0, 220.0, 190.0]
        )
        self.assertEqual(statement["closing_balance"], 190.0)
        self.assertEqual(statement["closing_balance"], wallet.balance)
        self.assertEqual(statement["pending"], pending)
        self.assertEqual(statement["pending_amount"], 40.0)
        # The debit consumed the credit expiring first: 20 of it is left.
        self.assertEqual(statement["expiring"], soon)
        self.assertEqual(statement["expiring_amount"], 20.0)
        self.assertNotIn(old, statement["expiring"])

    def test_statement_period_from_report_data(self):
        wallet, old, soon, later, spent, _pending = self._history()
        data = {
            "date_from": fields.Date.to_string(self.today - relativedelta(days=45)),
            "date_to": fields.Date.to_string(self.today - relativedelta(days=20)),
        }
        statement = self.env[STATEMENT_MODEL]._get_report_values(wallet.ids, data)[
            "statements"
        ][wallet.id]
        self.assertEqual(statement["opening_balance"], 150.0)
        self.assertEqual([line["transaction"] for line in statement["lines"]], [later])
        self.assertEqual(statement["closing_balance"], 220.0)
        # The period before the first movement: no line, zero balances.
        data = {"date_from": "2000-01-01", "date_to": "2000-12-31"}
        statement = self.env[STATEMENT_MODEL]._get_report_values(wallet.ids, data)[
            "statements"
        ][wallet.id]
        self.assertEqual(
            (statement["opening_balance"], statement["closing_balance"]), (0.0, 0.0)
        )
        self.assertFalse(statement["lines"])

    def test_statement_period_chosen_in_the_print_wizard(self):
        wallet, _old, _soon, later, _spent, _pending = self._history()
        wizard_form = Form(
            self.env["referral.wallet.statement.wizard"]
            .with_user(self.salesman)
            .with_context(active_model="referral.wallet", active_ids=wallet.ids)
        )
        # The user's own day, as every date default of Odoo.
        salesman_today = fields.Date.context_today(
            self.env.user.with_user(self.salesman)
        )
        self.assertEqual(wizard_form.date_to, salesman_today)
        self.assertEqual(
            wizard_form.date_from, salesman_today - relativedelta(months=12, days=-1)
        )
        wizard_form.date_from = self.today - relativedelta(days=45)
        wizard_form.date_to = self.today - relativedelta(days=20)
        wizard = wizard_form.save()
        self.assertEqual(wizard.wallet_ids, wallet)
        action = wizard.action_print()
        self.assertEqual(
            action["report_name"], "sale_referral_lifecycle.report_referral_statement"
        )
        document = self._render(REPORT, wallet, data=action["data"])
        movements = self._named(document, "movement")
        self.assertEqual(len(movements), 1)
        self.assertIn(later.name, movements[0])
        self.assertIn("150.00", self._named(document, "opening_balance")[0])
        wizard.date_from = self.today + relativedelta(days=1)
        with self.assertRefused(UserError, "start before it ends"):
            wizard.action_print()

    def test_statement_printed_from_the_wizard_as_the_web_client_does(self):
        """The web client prints a report that has data with the data alone,
        no record ids (/report/pdf/<report>?options=...): the statement still
        shows the chosen wallet, and the action names it."""
        wallet, _old, _soon, later, _spent, _pending = self._history()
        wizard = (
            self.env["referral.wallet.statement.wizard"]
            .with_user(self.salesman)
            .with_context(active_model="referral.wallet", active_ids=wallet.ids)
            .create({"date_from": self.today - relativedelta(days=45)})
        )
        action = wizard.action_print()
        self.assertIn(self.sponsor.name, action["name"])
        content, _type = (
            self.env["ir.actions.report"]
            .with_user(self.salesman)
            ._render_qweb_html(REPORT, None, data=action["data"])
        )
        document = lxml_html.fromstring(content)
        movements = self._named(document, "movement")
        self.assertEqual(len(movements), 2)
        self.assertIn(later.name, movements[0])
        self.assertIn(self.sponsor.name, self._text(document))

    def test_statement_period_refused_when_it_ends_before_it_starts(self):
        wallet = self._history()[0]
        with self.assertRefused(UserError, "Choose an earlier start date"):
            self.env[STATEMENT_MODEL]._get_report_values(
                wallet.ids, {"date_from": "2025-06-01", "date_to": "2025-05-01"}
            )

    def test_statement_html_shows_balances_movements_and_expiring_credit(self):
        wallet, _old, soon, later, spent, _pending = self._history()
        self.sponsor.write({"street": "12 Referral Street", "city": "Brussels"})
        document = self._render(REPORT, wallet)
        page = self._text(document)
        self.assertIn("Sponsor Corp", page)
        self.assertIn("12 Referral Street", page)
        self.assertIn("100.00", self._named(document, "opening_balance")[0])
        self.assertIn("190.00", self._named(document, "closing_balance")[0])
        movements = self._named(document, "movement")
        self.assertEqual(len(movements), 3)
        for row, (name, amount, balance) in zip(
            movements,
            [
                ("Reward expiring soon", "50.00", "150.00"),
                ("Reward expiring later", "70.00", "220.00"),
                ("Spent on renewal", "-30.00", "190.00"),
            ],
            strict=True,
        ):
            self.assertIn(name, row)
            self.assertRegex(row, rf"{re.escape(amount)}.*{re.escape(balance)}")
        self.assertIn("-30.00", self._named(document, "movement_amount")[2])
        # Only the credit expiring within 60 days is announced, for what is
        # left of it; the one expiring in 90 days is not.
        expiring = self._named(document, "expiring_credit")
        self.assertEqual(len(expiring), 1)
        self.assertIn("Reward expiring soon", expiring[0])
        self.assertIn("20.00", self._named(document, "expiring_amount")[0])
        self.assertNotIn("Reward expiring later", " ".join(expiring))
        self.assertIn("40.00", self._named(document, "pending_amount")[0])
        self.assertEqual(len(self._named(document, "pending_reward")), 1)

    def test_statement_html_without_expiring_or_pending_credit(self):
        wallet = self._wallet()
        wallet._credit(80.0, name="Lasting reward", date=self.today)
        document = self._render(REPORT, wallet)
        self.assertIn("80.00", self._named(document, "closing_balance")[0])
        self.assertFalse(document.xpath("//*[@name='expiring']"))
        self.assertFalse(document.xpath("//*[@name='pending']"))
        # A period with no movement says so.
        document = self._render(
            REPORT, wallet, data={"date_from": "2000-01-01", "date_to": "2000-12-31"}
        )
        self.assertEqual(len(self._named(document, "no_movement")), 1)

    def test_statement_in_the_sponsor_language(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        wallet = self._history()[0]
        data = {"date_from": "2024-01-31", "date_to": "2024-12-31"}
        period = self._named(self._render(REPORT, wallet, data), "period")[0]
        self.assertIn("01/31/2024", period)
        self.sponsor.lang = "fr_FR"
        period = self._named(self._render(REPORT, wallet, data), "period")[0]
        self.assertIn("31/01/2024", period)

    def test_statement_printed_from_the_contact(self):
        wallet = self._history()[0]
        other_wallet = self._wallet(company=self.other_company)
        other_wallet._credit(999.0, name="Other company credit")
        # A contact of the sponsor prints its company's wallet of the
        # current company.
        document = self._render(PARTNER_REPORT, self.sponsor_contact)
        self.assertIn("190.00", self._named(document, "closing_balance")[0])
        self.assertNotIn("999.00", self._text(document))
        self.assertEqual(len(self._named(document, "movement")), 3)
        # The contact's Print menu offers it to salespeople.
        report = self.env.ref(PARTNER_REPORT)
        self.assertEqual(report.binding_model_id.model, "res.partner")
        action = wallet.with_user(self.salesman).action_print_statement()
        self.assertEqual(action["res_model"], "referral.wallet.statement.wizard")
        wizard = (
            self.env[action["res_model"]]
            .with_user(self.salesman)
            .with_context(**action["context"])
            .create({})
        )
        self.assertEqual(wizard.wallet_ids, wallet)
        stranger = self._create_customer("No Credit Ltd")
        with self.assertRefused(UserError, "No Credit Ltd earned no referral credit"):
            self._render(PARTNER_REPORT, stranger)

    def test_statement_readable_by_a_salesperson(self):
        wallet = self._history()[0]
        content, _type = (
            self.env["ir.actions.report"]
            .with_user(self.salesman)
            ._render_qweb_html(REPORT, wallet.ids)
        )
        self.assertIn(b"Spent on renewal", content)

    def test_statement_values_read_in_batch(self):
        wallet = self._history()[0]
        wallets = (
            wallet | self._history(self._wallet(self._create_customer("Second Co")))[0]
        )
        wallets |= self._history(self._wallet(self._create_customer("Third Co")))[0]
        Report = self.env[STATEMENT_MODEL]
        Report._get_report_values(wallets.ids)  # user, company and currency
        # One read_group, three searches, one read of the wallets and two of
        # the transactions, whatever the number of wallets.
        for records in (wallet, wallets):
            self.Wallet.invalidate_model()
            self.Transaction.invalidate_model()
            with self.assertQueryCount(7):
                values = Report._get_report_values(records.ids)
        self.assertEqual(
            [values["statements"][w.id]["closing_balance"] for w in wallets],
            [190.0] * 3,
        )

    # ------------------------------------------------------------------
    # Sending the statement
    # ------------------------------------------------------------------

    def test_send_statement_attaches_the_report(self):
        wallet = self._history()[0]
        action = wallet.action_send_statement()
        self.assertEqual(action["res_model"], "mail.compose.message")
        template = self.env.ref(
            "sale_referral_lifecycle.mail_template_referral_statement"
        )
        self.assertEqual(action["context"]["default_template_id"], template.id)
        self.assertEqual(
            template.report_template_ids, self.env.ref(REPORT), "report attached"
        )
        composer = Form(
            self.env["mail.compose.message"].with_context(**action["context"])
        ).save()
        self.assertEqual(composer.partner_ids, self.sponsor)
        # Named .html in tests: reports are not converted to PDF there.
        self.assertEqual(
            [name.rsplit(".", 1)[0] for name in composer.attachment_ids.mapped("name")],
            ["Referral credit statement - Sponsor Corp"],
        )
        self.assertIn(b"Spent on renewal", composer.attachment_ids.raw)
        composer._action_send_mail()
        message = wallet.message_ids[0]
        self.assertEqual(message.partner_ids, self.sponsor)
        self.assertEqual(
            message.attachment_ids.checksum, composer.attachment_ids.checksum
        )
        self.assertIn("190.00", message.body)

    # ------------------------------------------------------------------
    # Manual adjustment
    # ------------------------------------------------------------------

    def test_approver_adds_credit_with_reason(self):
        wallet = self._wallet()
        action = wallet.with_user(self.approver).action_open_adjustment_wizard()
        self.assertEqual(action["res_model"], "referral.wallet.adjust.wizard")
        wizard_form = Form(
            self.Wizard.with_user(self.approver).with_context(**action["context"])
        )
        self.assertEqual(wizard_form.wallet_id, wallet)
        approver_today = fields.Date.context_today(self.Wizard.with_user(self.approver))
        self.assertEqual(
            wizard_form.expiry_date, approver_today + relativedelta(months=12)
        )
        wizard_form.amount = 60.0
        wizard_form.reason = "Goodwill gesture after a late delivery"
        wizard_form.save().action_apply()
        adjustment = wallet.transaction_ids
        self.assertRecordValues(
            adjustment,
            [
                {
                    "transaction_type": "adjustment",
                    "direction": "in",
                    "state": "posted",
                    "amount": 60.0,
                    "signed_amount": 60.0,
                    "remaining_amount": 60.0,
                    "reason": "Goodwill gesture after a late delivery",
                    "name": "Adjustment: Goodwill gesture after a late delivery",
                    "expiry_date": approver_today + relativedelta(months=12),
                }
            ],
        )
        self.assertEqual(wallet.balance, 60.0)
        self.assertIn("Goodwill gesture", wallet.message_ids[0].body)
        self.assertEqual(adjustment.create_uid, self.approver)

    def test_approver_removes_credit_oldest_first(self):
        wallet, _old, soon, *_rest = self._history()
        wizard_form = Form(
            self.Wizard.with_user(self.approver).with_context(
                default_wallet_id=wallet.id
            )
        )
        wizard_form.direction = "out"
        self.assertFalse(wizard_form.expiry_date)
        wizard_form.amount = 25.0
        wizard_form.reason = "Credit granted twice by mistake\nSee ticket 42"
        wizard_form.save().action_apply()
        removal = wallet.transaction_ids.filtered(
            lambda t: t.transaction_type == "adjustment"
        )
        self.assertRecordValues(
            removal,
            [
                {
                    "direction": "out",
                    "state": "posted",
                    "signed_amount": -25.0,
                    "name": "Adjustment: Credit granted twice by mistake",
                    "reason": "Credit granted twice by mistake\nSee ticket 42",
                }
            ],
        )
        self.assertEqual(wallet.balance, 165.0)
        self.assertEqual(soon.remaining_amount, 0.0)

    def test_adjustment_refused_without_reason(self):
        wallet = self._wallet()
        with self.assertRefused(UserError, "reason"):
            self._adjust(self.approver, wallet, reason="   \n ")
        self.assertFalse(wallet.transaction_ids)
        with self.assertRefused(UserError, "positive amount"):
            self._adjust(self.approver, wallet, reason="Gesture", amount=-5.0)
        self.assertFalse(wallet.transaction_ids)

    def test_removal_beyond_the_balance_refused(self):
        wallet = self._wallet()
        wallet._credit(10.0, name="Small reward")
        with self.assertRefused(UserError, "less than the"):
            self._adjust(
                self.approver, wallet, direction="out", amount=25.0, reason="Error"
            )
        self.assertEqual(len(wallet.transaction_ids), 1)
        self.assertEqual(wallet.balance, 10.0)
        self.assertEqual(wallet.transaction_ids.remaining_amount, 10.0)

    def test_salesperson_cannot_adjust(self):
        wallet = self._wallet()
        for user in (self.salesman, self.sale_manager, self.accountant):
            with self.assertRefused(AccessError, "referral.wallet.adjust.wizard"):
                self._adjust(user, wallet, reason="I would like more")
        # Even with a wizard opened for them, applying re-checks the group.
        wizard = self.Wizard.create(
            {"wallet_id": wallet.id, "amount": 25.0, "reason": "Sneaky"}
        )
        with self.assertRefused(AccessError, "Only reward approvers"):
            wizard.with_user(self.salesman).action_apply()
        self.assertFalse(wallet.transaction_ids)
        self.assertEqual(wallet.balance, 0.0)
