# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The credit ledger proven by random sequences of real operations.

Customers X and Y spend credit; Z is a duplicate of X, merged into it at
some point; a contact person moves between X and Y; R1 (referred by X) and
R2 (referred by Z) order, cancel, re-order and get refunded. After every
step, for every wallet:

    balance = sum of its posted transactions >= 0
    balance + credit carried by live documents
        = credit earned - credit expired (+ manual adjustments)

and for every document: its total is not below zero; for every customer:
the credit notes never owe it more than its invoices charged; for every
referral: its net reward (posted and pending) is its amount while its
qualifying order earns it, and no spendable credit is left of it once that
order no longer does (what was spent before stays spent, never a second
reward).

"Credit carried by live documents" is computed here from the documents
alone (states, lines, currencies), never from the ledger: a confirmed
order's credit line carries its amount less the part its posted invoices
invoiced; a posted invoice carries its credit lines (in the company
currency at its own date); a posted credit note gives back its share of
what its invoice carries, at most what the invoice's earlier credit notes
left; draft and cancelled documents carry nothing.
"""

import os
from datetime import timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from odoo import Command, fields
from odoo.exceptions import UserError, ValidationError
from odoo.tests import Form, tagged

from .common import WalletCommon

# make test: 200 sequences of up to 25 steps; make bench (or the variable)
# runs more.
EXAMPLES = int(os.environ.get("REFERRAL_LEDGER_EXAMPLES") or 200)
STEPS = 25
REFUSALS = (UserError, ValidationError)
REWARD = 50.0


class LedgerMachine(RuleBasedStateMachine):
    """Random sequences of real operations on the customers' wallets."""

    test = None  # the TransactionCase running the machine

    def __init__(self):
        super().__init__()
        test = self.test
        test.env.invalidate_all()
        self.savepoint = test.env.cr.savepoint()
        self.earned = dict.fromkeys(test.wallets.ids, 0.0)
        self.orders = test.env["sale.order"]
        self.moves = test.env["account.move"]
        self.merged = False

    def teardown(self):
        self.savepoint.close(rollback=True)
        self.test.env.invalidate_all(flush=False)

    # ---------------------------------------------------------- helpers

    def _attempt(self, operation):
        """Run ``operation`` as a user request: a refusal writes
        nothing (its savepoint is rolled back)."""
        try:
            with self.test.env.cr.savepoint():
                return operation()
        except REFUSALS:
            self.test.env.invalidate_all(flush=False)
            return None

    def _customers(self):
        test = self.test
        return [test.customer_x, test.customer_y, test.contact] + (
            [] if self.merged else [test.customer_z]
        )

    def _customer(self, index):
        customers = self._customers()
        return customers[index % len(customers)]

    def _wallets(self):
        return self.test.env["referral.wallet"].search(
            [("id", "in", list(self.earned))]
        )

    def _has(self, records, predicate):
        return bool(records.exists().filtered(predicate))

    def _pick(self, records, index, predicate):
        candidates = records.exists().filtered(predicate)
        return candidates[index % len(candidates)] if candidates else None

    def _order_values(self, partner, lines, billing=False):
        values = {
            "partner_id": partner.id,
            "order_line": [
                Command.create(
                    {
                        "product_id": self.test.item.id,
                        "product_uom_qty": quantity,
                        "price_unit": price,
                    }
                )
                for quantity, price in lines
            ],
        }
        if billing:
            values["partner_invoice_id"] = self.test.billing.id
        return values

    # ------------------------------------------------------------ rules

    @initialize(amounts=st.tuples(st.integers(50, 300), st.integers(0, 300)))
    def fund(self, amounts):
        """Each sequence starts with credit to spend."""
        test = self.test
        for wallet, amount in zip(test.wallets[:2], amounts, strict=True):
            if amount:
                wallet._credit(float(amount), name="Earned")
                self.earned[wallet.id] += amount

    @rule(
        customer=st.integers(0, 3),
        amount=st.integers(1, 300),
        expiry_days=st.sampled_from([30, 30, 5, -1, None]),
    )
    def earn(self, customer, amount, expiry_days):
        partner = self._customer(customer).commercial_partner_id
        wallet = self._wallets().filtered(lambda w: w.partner_id == partner)
        expiry = (
            self.test.today + timedelta(days=expiry_days)
            if expiry_days is not None
            else False
        )
        wallet._credit(float(amount), expiry_date=expiry, name="Earned")
        self.earned[wallet.id] += amount

    @rule(
        customer=st.integers(0, 3),
        quantity=st.integers(1, 4),
        billing=st.booleans(),
        price=st.sampled_from([100.0, 100.0, 35.5]),
    )
    def quotation_with_credit(self, customer, quantity, billing, price):
        order = self.test.env["sale.order"].create(
            self._order_values(
                self._customer(customer), [(quantity, price)], billing=billing
            )
        )
        self.orders |= order
        self._attempt(order.action_apply_referral_credit)

    @rule(referee=st.integers(0, 1), quantity=st.integers(1, 3))
    def referee_quotation(self, referee, quantity):
        partner = (self.test.referee_1, self.test.referee_2)[referee]
        self.orders |= self.test.env["sale.order"].create(
            self._order_values(partner, [(quantity, 100.0)])
        )

    @precondition(lambda m: m._has(m.orders, lambda o: o.state in ("draft", "sent")))
    @rule(index=st.integers(0, 50))
    def confirm(self, index):
        order = self._pick(self.orders, index, lambda o: o.state in ("draft", "sent"))
        if order:
            self._attempt(order.action_confirm)

    @precondition(lambda m: m._has(m.orders, lambda o: o.state != "cancel"))
    @rule(index=st.integers(0, 50))
    def cancel_order(self, index):
        order = self._pick(self.orders, index, lambda o: o.state != "cancel")
        if order:
            self._attempt(order.with_context(disable_cancel_warning=True).action_cancel)

    @precondition(lambda m: m._has(m.orders, lambda o: o.state == "cancel"))
    @rule(index=st.integers(0, 50))
    def back_to_quotation(self, index):
        order = self._pick(self.orders, index, lambda o: o.state == "cancel")
        if order:
            self._attempt(order.action_draft)

    @precondition(lambda m: m._has(m.orders, lambda o: o.state != "cancel"))
    @rule(
        index=st.integers(0, 50),
        field=st.sampled_from(["product_uom_qty", "price_unit", "discount"]),
        value=st.sampled_from([0.0, 1.0, 2.0, 30.0, 50.0]),
        form=st.booleans(),
    )
    def change_goods(self, index, field, value, form):
        """Quantity, price or discount of a goods line, before or after
        confirmation, directly or through the order's form."""
        # The orders carrying credit first: those the change may unbalance.
        order = self._pick(
            self.orders,
            index,
            lambda o: o.state != "cancel"
            and o.order_line.filtered("referral_credit_wallet_id"),
        ) or self._pick(self.orders, index, lambda o: o.state != "cancel")
        if not order:
            return
        goods = order.order_line.filtered(
            lambda ln: not ln.display_type
            and not ln.referral_credit_wallet_id
            and not ln.is_downpayment
        )[:1]
        if not goods:
            return
        if field == "discount":
            value = min(value, 100.0)

        def change():
            if form:
                order.write({"order_line": [Command.update(goods.id, {field: value})]})
            else:
                goods.write({field: value})

        self._attempt(change)

    @precondition(lambda m: m._has(m.orders, lambda o: o.state == "sale"))
    @rule(
        index=st.integers(0, 50),
        other=st.integers(0, 50),
        together=st.booleans(),
        post=st.booleans(),
    )
    def invoice_orders(self, index, other, together, post):
        """Create Invoice on one confirmed order, or on two at once (one
        invoice when they share customer and address), and post it."""
        orders = self._pick(self.orders, index, lambda o: o.state == "sale")
        if together:
            orders |= self._pick(self.orders, other, lambda o: o.state == "sale")
        moves = self._attempt(lambda: orders._create_invoices(final=True))
        if moves:
            self.moves |= moves
            if post:
                self._attempt(moves.action_post)

    @precondition(lambda m: m._has(m.orders, lambda o: o.state == "sale"))
    @rule(index=st.integers(0, 50), percent=st.sampled_from([30.0, 50.0, 100.0]))
    def down_payment(self, index, percent):
        order = self._pick(self.orders, index, lambda o: o.state == "sale")

        def create():
            wizard = (
                self.test.env["sale.advance.payment.inv"]
                .with_context(active_model="sale.order", active_ids=order.ids)
                .create({"advance_payment_method": "percentage", "amount": percent})
            )
            wizard.create_invoices()
            return order.invoice_ids

        moves = self._attempt(create)
        if moves:
            self.moves |= moves

    @precondition(lambda m: m._has(m.moves, lambda r: r.state == "draft"))
    @rule(index=st.integers(0, 50))
    def post(self, index):
        move = self._pick(self.moves, index, lambda m: m.state == "draft")
        if move:
            self._attempt(move.action_post)

    @precondition(lambda m: m._has(m.moves, lambda r: r.state == "posted"))
    @rule(
        index=st.integers(0, 50),
        modify=st.booleans(),
        share=st.sampled_from([1.0, 1.0, 0.4]),
    )
    def reverse(self, index, modify, share):
        """A credit note of a posted invoice or credit note (reverse, or
        reverse and create a new draft), possibly for part of the credit."""
        move = self._pick(self.moves, index, lambda m: m.state == "posted")
        wizard = (
            self.test.env["account.move.reversal"]
            .with_context(active_model="account.move", active_ids=move.ids)
            .create({"journal_id": move.journal_id.id, "reason": "test"})
        )

        def reverse():
            if modify:
                wizard.modify_moves()
                return
            refund = self.test.env["account.move"].browse(
                wizard.refund_moves()["res_id"]
            )
            if share < 1.0:
                refund.write(
                    {
                        "invoice_line_ids": [
                            Command.update(
                                line.id, {"price_unit": line.price_unit * share}
                            )
                            for line in refund.invoice_line_ids.filtered(
                                "referral_credit_wallet_id"
                            )
                        ]
                    }
                )
            refund.action_post()

        self._attempt(reverse)
        self.moves |= wizard.new_move_ids | move.reversal_move_ids

    @precondition(lambda m: m._has(m.moves, lambda r: r.state != "draft"))
    @rule(index=st.integers(0, 50))
    def reset_to_draft(self, index):
        move = self._pick(self.moves, index, lambda m: m.state != "draft")
        if move:
            self._attempt(move.button_draft)

    @precondition(lambda m: m._has(m.moves, lambda r: r.state == "draft"))
    @rule(index=st.integers(0, 50))
    def cancel_invoice(self, index):
        move = self._pick(self.moves, index, lambda m: m.state == "draft")
        if move:
            self._attempt(move.button_cancel)

    @precondition(lambda m: m._has(m.moves, lambda r: r.state == "draft"))
    @rule(index=st.integers(0, 50), price=st.sampled_from([0.0, 10.0, 60.0]))
    def change_invoice_goods(self, index, price):
        move = self._pick(
            self.moves,
            index,
            lambda m: m.state == "draft"
            and m.invoice_line_ids.filtered("referral_credit_wallet_id"),
        ) or self._pick(self.moves, index, lambda m: m.state == "draft")
        goods = move.invoice_line_ids.filtered(
            lambda ln: ln.display_type == "product" and not ln.referral_credit_wallet_id
        )[:1]
        if goods:
            self._attempt(
                lambda: move.write(
                    {
                        "invoice_line_ids": [
                            Command.update(goods.id, {"price_unit": price})
                        ]
                    }
                )
            )

    @precondition(lambda m: m._has(m.moves, lambda r: r.state == "draft"))
    @rule(index=st.integers(0, 50))
    def switch_currency(self, index):
        move = self._pick(self.moves, index, lambda m: m.state == "draft")
        test = self.test
        currency = test.foreign if move.currency_id == test.currency else test.currency
        self._attempt(lambda: move.write({"currency_id": currency.id}))

    @precondition(
        lambda m: m._has(
            m.moves, lambda r: r.state == "draft" and r.move_type == "out_invoice"
        )
    )
    @rule(index=st.integers(0, 50))
    def switch_to_credit_note(self, index):
        move = self._pick(
            self.moves,
            index,
            lambda m: m.state == "draft" and m.move_type == "out_invoice",
        )
        self._attempt(move.action_switch_move_type)

    @precondition(lambda m: m.orders or m.moves)
    @rule(index=st.integers(0, 50), invoice=st.booleans())
    def duplicate(self, index, invoice):
        records = self.moves if invoice else self.orders
        record = self._pick(records, index, lambda r: True)
        if not record:
            return
        copy = self._attempt(record.copy)
        if copy is None:
            return
        lines = copy.invoice_line_ids if invoice else copy.order_line
        self.test.assertFalse(
            lines.filtered("referral_credit_wallet_id"),
            "a copy never carries referral credit",
        )
        if invoice:
            self.moves |= copy
        else:
            self.test.assertFalse(lines.filtered("is_referral_welcome_discount"))
            self.orders |= copy

    @precondition(
        lambda m: m._has(m.orders, lambda r: r.state == "draft")
        or m._has(m.moves, lambda r: r.state == "draft")
    )
    @rule(index=st.integers(0, 50), invoice=st.booleans(), customer=st.integers(0, 3))
    def change_customer(self, index, invoice, customer):
        records = self.moves if invoice else self.orders
        record = self._pick(records, index, lambda r: r.state == "draft")
        if record:
            partner = self._customer(customer)
            self._attempt(lambda: record.write({"partner_id": partner.id}))

    @rule(customer=st.integers(0, 3), quantity=st.integers(1, 4), post=st.booleans())
    def direct_invoice_with_wizard(self, customer, quantity, post):
        move = self.test.env["account.move"].create(
            {
                "move_type": "out_invoice",
                "partner_id": self._customer(customer).id,
                "invoice_date": self.test.today,
                "invoice_line_ids": [
                    Command.create(
                        {"product_id": self.test.item.id, "quantity": quantity}
                    )
                ],
            }
        )
        self.moves |= move

        def apply():
            action = move.action_open_referral_credit_wizard()
            Form(
                self.test.env[action["res_model"]].with_context(**action["context"])
            ).save().action_apply()

        self._attempt(apply)
        if post:
            self._attempt(move.action_post)

    @rule(to_y=st.booleans())
    def move_contact(self, to_y):
        """The contact person changes company: to Y's, or to X's."""
        test = self.test
        target = test.customer_y if to_y else test.customer_x
        if test.contact.parent_id != target:
            self._attempt(lambda: test.contact.write({"parent_id": target.id}))

    @precondition(lambda m: not m.merged)
    @rule()
    def merge_duplicate(self):
        """Merge Contacts: Z (a duplicate of X) into X."""
        test = self.test
        wallet_z = test.wallets.filtered(lambda w: w.partner_id == test.customer_z)
        wallet_x = test.wallets.filtered(lambda w: w.partner_id == test.customer_x)
        wizard = test.env["base.partner.merge.automatic.wizard"].create(
            {
                "state": "selection",
                "partner_ids": [Command.set((test.customer_x | test.customer_z).ids)],
                "dst_partner_id": test.customer_x.id,
            }
        )
        wizard.action_merge()
        self.merged = True
        self.earned[wallet_x.id] += self.earned.pop(wallet_z.id)
        test.assertFalse(wallet_z.exists())

    @rule(days=st.sampled_from([3, 10, 40]))
    def time_passes(self, days):
        """``days`` go by: credit reaches its expiry date, the daily job
        expires it."""
        self.test.env.flush_all()
        self.test.env.cr.execute(
            "UPDATE referral_wallet_transaction SET expiry_date = expiry_date - %s "
            "WHERE expiry_date IS NOT NULL",
            [days],
        )
        self.test.env.invalidate_all()
        self.test.env["referral.wallet.transaction"]._cron_expire_credits()

    # -------------------------------------------------------- invariants

    @invariant()
    def books_balance(self):
        test = self.test
        # A minute later: the lifecycle queue's job ran (sponsors' rewards).
        test._process_lifecycle_queue()
        test.env.flush_all()
        test.env.invalidate_all()
        orders, moves = self.orders.exists(), self.moves.exists()
        for wallet in self._wallets():
            test._assert_ledger_invariant(wallet, self.earned[wallet.id], orders, moves)
        test._assert_no_total_below_zero(orders, moves)
        test._assert_credit_never_paid_out(moves)
        test._assert_one_reward_per_referral()


@tagged("post_install", "-at_install")
class TestWalletLedgerProperty(WalletCommon):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.program.write(
            {
                "redeem_scope": "any",
                "credit_tax_mode": "payment",
                "auto_apply_on_renewal": False,
                "sponsor_policy": "any",
                "reward_type": "fixed",
                "reward_fixed_amount": REWARD,
            }
        )
        cls.item = cls.env["product.product"].create(
            {
                "name": "Consulting day",
                "type": "service",
                "list_price": 100.0,
                "invoice_policy": "order",
                "taxes_id": [Command.clear()],
            }
        )
        cls.customer_x = cls._create_customer("Customer X")
        cls.customer_y = cls._create_customer("Customer Y")
        cls.customer_z = cls._create_customer("Customer X (duplicate)")
        cls.contact = cls.env["res.partner"].create(
            {"name": "Casey Contact", "parent_id": cls.customer_x.id}
        )
        cls.billing = cls.env["res.partner"].create(
            {"name": "Y Billing", "parent_id": cls.customer_y.id, "type": "invoice"}
        )
        cls.wallets = cls.Wallet._get_or_create(
            cls.customer_x | cls.customer_y | cls.customer_z, cls.company
        ).sorted(
            lambda w: [cls.customer_x, cls.customer_y, cls.customer_z].index(
                w.partner_id
            )
        )
        cls.referrals = cls.env["referral.referral"].create(
            [
                {
                    "sponsor_id": cls.customer_x.id,
                    "referee_company_name": "Referee One",
                },
                {
                    "sponsor_id": cls.customer_z.id,
                    "referee_company_name": "Referee Two",
                },
            ]
        )
        cls.referee_1, cls.referee_2 = cls.referrals.referee_id
        cls.today = fields.Date.context_today(cls.Wallet)
        cls.foreign = (
            cls.env["res.currency"]
            .with_context(active_test=False)
            .search(
                [("id", "!=", cls.currency.id), ("name", "in", ("EUR", "USD"))],
                limit=1,
            )
        )
        cls.foreign.active = True
        cls.env["res.currency.rate"].create(
            {
                "currency_id": cls.foreign.id,
                "company_id": cls.company.id,
                "name": cls.today - timedelta(days=400),
                "rate": 2.0 * cls.currency.rate,
            }
        )

    def test_ledger_invariant_holds_after_random_operations(self):
        LedgerMachine.test = self
        run_state_machine_as_test(
            LedgerMachine,
            settings=settings(
                max_examples=EXAMPLES,
                stateful_step_count=STEPS,
                deadline=None,
                derandomize=not os.environ.get("REFERRAL_LEDGER_RANDOM"),
                suppress_health_check=list(HealthCheck),
                database=None,
            ),
        )

    # ------------------------------------------------------------------
    # The invariants, from the documents alone
    # ------------------------------------------------------------------

    def _assert_ledger_invariant(self, wallet, earned, orders, moves):
        self.env.cr.execute(
            """SELECT COALESCE(SUM(signed_amount), 0),
                      COALESCE(SUM(remaining_amount)
                               FILTER (WHERE direction = 'in'), 0),
                      COALESCE(SUM(amount)
                               FILTER (WHERE transaction_type = 'expiry'), 0),
                      COUNT(*) FILTER (WHERE amount <= 0),
                      COALESCE(SUM(remaining_amount)
                               FILTER (WHERE transaction_type = 'reversal'), 0),
                      COALESCE(SUM(signed_amount)
                               FILTER (WHERE referral_id IS NOT NULL
                                       AND transaction_type IN ('credit', 'reversal')
                                       AND sale_order_id IS NULL
                                       AND invoice_id IS NULL), 0)
                 FROM referral_wallet_transaction
                WHERE wallet_id = %s AND state = 'posted'""",
            [wallet.id],
        )
        (
            posted,
            remaining,
            expired,
            non_positive,
            on_reversals,
            rewards,
        ) = self.env.cr.fetchone()
        self.assertEqual(non_positive, 0, "every amount is positive")
        self.assertEqual(
            on_reversals,
            0,
            "credit given back is the very credit spent (with its expiry), "
            "never a new credit",
        )
        self.assertAlmostEqual(wallet.balance, posted, places=2)
        self.assertGreaterEqual(
            round(posted, 2), 0.0, "the balance never goes negative"
        )
        self.assertAlmostEqual(
            remaining, posted, places=2, msg="the unspent credit is the balance"
        )
        carried = self._credit_carried_by_documents(wallet, orders, moves)
        self.assertAlmostEqual(
            posted + carried,
            earned + rewards - expired,
            places=2,
            msg="balance + credit carried by live documents = earned - expired",
        )

    def _to_company_currency(self, document, amount):
        date = (
            document.date_order
            if document._name == "sale.order"
            else document.invoice_date
        ) or fields.Date.context_today(document)
        return self.currency.round(
            document.currency_id._convert(amount, self.currency, self.company, date)
        )

    def _credit_carried_by_documents(self, wallet, orders, moves):
        def line_credit(line):
            return max(-line.price_total, 0.0)

        carried = 0.0
        spent = {}
        for move in moves.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_invoice"
        ):
            amount = sum(
                self._to_company_currency(move, line_credit(line))
                for line in move.invoice_line_ids
                if line.referral_credit_wallet_id == wallet
            )
            spent[move] = amount
            carried += amount
        # Credit notes give back their share of their invoice's credit, at
        # most what it carries less what its earlier credit notes gave back.
        left = {}
        for refund in moves.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_refund"
        ).sorted("id"):
            for line in refund.invoice_line_ids.filtered(
                lambda ln: ln.referral_credit_wallet_id == wallet
            ).sorted("id"):
                origin = (
                    refund.reversed_entry_id
                    or (
                        line.sale_line_ids.invoice_lines.filtered(
                            lambda il: il.move_id.move_type == "out_invoice"
                            and il.parent_state == "posted"
                            and il.referral_credit_wallet_id == wallet
                        ).move_id.sorted("id")[:1]
                    )
                )
                if origin.move_type != "out_invoice":
                    continue
                origin_lines = origin.invoice_line_ids.filtered(
                    lambda ln: ln.referral_credit_wallet_id == wallet
                )
                origin_spent = (
                    spent.get(origin, 0.0) if origin.state == "posted" else 0.0
                )
                left.setdefault(origin, origin_spent)
                base = sum(line_credit(ln) for ln in origin_lines)
                if refund.currency_id == origin.currency_id and base > 0:
                    share = origin_spent * min(line_credit(line) / base, 1.0)
                else:
                    share = self._to_company_currency(refund, line_credit(line))
                given_back = self.currency.round(min(share, max(left[origin], 0.0)))
                left[origin] -= given_back
                carried -= given_back
        for order in orders.filtered(lambda o: o.state == "sale"):
            for line in order.order_line.filtered(
                lambda ln: ln.referral_credit_wallet_id == wallet
            ):
                invoiced = sum(
                    il.quantity
                    for il in line.invoice_lines
                    if il.parent_state == "posted"
                    and il.move_id.move_type == "out_invoice"
                )
                share = (
                    min(max(1.0 - invoiced / line.product_uom_qty, 0.0), 1.0)
                    if line.product_uom_qty
                    else 0.0
                )
                amount = self._to_company_currency(order, line_credit(line)) * share
                if amount:
                    # The binding: an order's uninvoiced credit is its
                    # customer's.
                    self.assertEqual(
                        wallet.partner_id, order.partner_id.commercial_partner_id
                    )
                carried += self.currency.round(amount)
        return carried

    def _assert_no_total_below_zero(self, orders, moves):
        """No document carrying credit totals below zero (a negative total
        without credit, a down payment deducted from goods set to zero, is
        not the credit's doing)."""
        for document in [
            *orders.filtered(lambda o: o.state != "cancel"),
            *moves.filtered(lambda m: m.state != "cancel"),
        ]:
            lines = (
                document.order_line
                if document._name == "sale.order"
                else document.invoice_line_ids
            ).filtered("referral_credit_wallet_id")
            if document.currency_id.is_zero(sum(lines.mapped("price_total"))):
                continue
            self.assertGreaterEqual(
                document.currency_id.round(document.amount_total),
                0.0,
                f"{document.display_name}: no total below zero because of credit",
            )

    def _assert_credit_never_paid_out(self, moves):
        """Credit never becomes money: the credit notes of an invoice, or of
        orders, paid partly with credit never pay back more than was
        charged in money."""
        for refund in moves.filtered(
            lambda m: m.state == "posted" and m.move_type == "out_refund"
        ):
            origin = refund.reversed_entry_id
            if origin:
                if not origin.invoice_line_ids.filtered("referral_credit_wallet_id"):
                    continue
                documents = origin | origin.reversal_move_ids
            else:
                orders = refund.invoice_line_ids.sale_line_ids.order_id
                if not orders.order_line.filtered("referral_credit_wallet_id"):
                    continue
                documents = orders.invoice_ids
            if documents.filtered(
                lambda m: m.move_type == "out_invoice"
                and m.posted_before
                and m.state != "posted"
            ):
                # An invoice reset after its credit note: no longer charged,
                # plain accounting (its credit went back as credit).
                continue
            posted = documents.filtered(lambda m: m.state == "posted")
            balance = sum(posted.mapped("amount_total_signed"))
            self.assertGreaterEqual(
                round(balance, 2),
                -0.01,
                f"{refund.name} pays back credit as money",
            )

    def _assert_one_reward_per_referral(self):
        for referral in self.referrals:
            reward_credits = referral.transaction_ids.filtered(
                lambda t: t.transaction_type == "credit"
                and t.state in ("posted", "pending")
            )
            reversed_amount = sum(
                reward_credits.reversal_ids.filtered(
                    lambda r: r.state == "posted" and r.direction == "out"
                ).mapped("amount")
            )
            net = sum(reward_credits.mapped("amount")) - reversed_amount
            self.assertLessEqual(round(net, 2), REWARD, "never a second reward")
            if self._reward_earned(referral):
                self.assertAlmostEqual(net, REWARD, places=2, msg=referral.name)
            else:
                self.assertFalse(
                    reward_credits.filtered(lambda t: t.state == "pending"),
                    referral.name,
                )
                self.assertAlmostEqual(
                    sum(reward_credits.mapped("remaining_amount")),
                    0.0,
                    places=2,
                    msg=f"{referral.name}: nothing spendable left of a revoked reward",
                )

    def _reward_earned(self, referral):
        """The referral's qualifying order stands: a confirmed order of the
        referee linked to it that its credit notes do not refund in full."""
        orders = self.env["sale.order"].search(
            [("referral_id", "=", referral.id), ("state", "=", "sale")]
        )
        for order in orders:
            moves = order.invoice_ids.filtered(lambda m: m.state == "posted")
            invoiced = sum(
                moves.filtered(lambda m: m.move_type == "out_invoice").mapped(
                    "amount_total"
                )
            )
            refunded = sum(
                moves.filtered(lambda m: m.move_type == "out_refund").mapped(
                    "amount_total"
                )
            )
            if not (
                refunded and refunded >= order.amount_total and invoiced <= refunded
            ):
                return True
        return False

    # ------------------------------------------------------------------
    # The invariant itself is checked
    # ------------------------------------------------------------------

    def test_invariant_helper_sees_a_wrong_balance(self):
        """The invariant is not vacuous: credit posted outside any document
        and not counted as earned breaks it."""
        wallet = self.wallets[0]
        wallet._credit(10.0, name="Unaccounted")
        with self.assertRaises(AssertionError):
            self._assert_ledger_invariant(
                wallet, 0.0, self.env["sale.order"], self.env["account.move"]
            )
        # Counted as earned, it holds.
        self._assert_ledger_invariant(
            wallet, 10.0, self.env["sale.order"], self.env["account.move"]
        )

    def test_reward_invariant_sees_a_second_reward(self):
        """The reward invariant is not vacuous either."""
        referral = self.referrals[0]
        order = self.env["sale.order"].create(
            {
                "partner_id": self.referee_1.id,
                "order_line": [Command.create({"product_id": self.item.id})],
            }
        )
        order.action_confirm()
        self._process_lifecycle_queue()
        self._assert_one_reward_per_referral()
        self.wallets[0]._credit(REWARD, name="Second reward", referral_id=referral.id)
        with self.assertRaises(AssertionError):
            self._assert_one_reward_per_referral()
