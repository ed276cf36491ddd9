# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The only writer of the credit that documents spend and of the rewards
referrals earn.

What a credit line of a sales order or a customer invoice spends is derived
from its document's current state, never from the path that led there:

- a confirmed order's credit line spends its amount, less the part its
  posted invoices carry (by quantity);
- a posted customer invoice's credit line spends its amount;
- a posted credit note's credit line gives back its share of what its
  invoice spends (at most what the invoice's earlier credit notes left);
- draft and cancelled documents, and removed lines, spend nothing.

Amounts are converted into the company currency from each document's own
currency and date. Three rules hold at every sync:

- **bounded by the document**: a document's credit lines never make its
  total fall below zero: they shrink to fit (the surplus goes back to the
  wallet, with a message), or the change is refused where they cannot
  change any more (credit already invoiced);
- **binding**: a line spends the wallet of its document's customer
  (commercial entity) in the document's company; for an invoice made from
  orders, the orders' customer. A confirmed order whose customer changed
  gives its credit back; a quotation or invoice is refused until its credit
  is applied again;
- **given-back credit keeps its expiry**: a release restores the very
  credits the spending consumed (``referral.wallet.allocation``), oldest
  first, with their own expiry dates.

``_sync`` compares the target with what the ledger holds for each line and
posts the difference. ``_sync_rewards`` does the same for the referrals'
rewards: what a referral earns follows its referee's qualifying order, and
the ledger posts the difference, once per referral whatever the path.
After any sequence of operations, a wallet's balance plus the credit its
live documents carry is the credit earned, less what expired, plus the
manual adjustments.
"""

from collections import defaultdict

from odoo import Command, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import SQL, format_amount

ORDER_LINE = "sale.order.line"
MOVE_LINE = "account.move.line"
# Context key of the writes the ledger makes on documents while fitting
# them: they neither fit nor sync again.
FITTING = "referral_ledger_fitting"


class ReferralLedger(models.AbstractModel):
    _name = "referral.ledger"
    _description = "Referral Credit Ledger"

    @api.model
    def _sync(self, order_lines=None, move_lines=None, removed=None):
        """Fit the documents of ``order_lines`` and ``move_lines`` (their
        invoices, credit notes and orders too) to their goods, then post the
        difference between what their credit lines spend now and what the
        ledger holds for them. ``removed`` lines are about to be deleted:
        they spend nothing. Raises a UserError, writing nothing, when a
        wallet cannot pay or a line spends another customer's wallet."""
        # sudo: spending follows the documents whoever changes them; the
        # ledger is never writable through access rights.
        self = self.sudo()
        order_lines = (order_lines or self.env[ORDER_LINE]).sudo()
        move_lines = (move_lines or self.env[MOVE_LINE]).sudo()
        order_lines, move_lines = self._collect(order_lines, move_lines)
        if not order_lines and not move_lines:
            return self.env["referral.wallet.transaction"]
        if (
            not removed
            and not self.env.context.get(FITTING)
            and self._fit_documents(order_lines.order_id, move_lines.move_id)
        ):
            order_lines, move_lines = order_lines.exists(), move_lines.exists()
        removed_keys = {(line._name, line.id) for line in (removed or [])}
        targets, holders = self._compute_targets(order_lines, move_lines, removed_keys)
        line_by_key = {
            (line._name, line.id): line for line in [*order_lines, *move_lines]
        }
        held, _debits = self._read_held(order_lines, move_lines)
        self._check_bindings(targets, held, line_by_key)
        transactions = self._post_differences(targets, holders, held, line_by_key)
        if move_lines and not removed:
            self._book_credit_lines(move_lines)
        return transactions

    # ------------------------------------------------------------------
    # Which lines
    # ------------------------------------------------------------------

    @api.model
    def _collect(self, order_lines, move_lines):
        """The credit lines whose spending depends on each other: an order
        line and the invoice lines made from it, an invoice and its credit
        notes. A few queries, whatever the size of the ledger."""
        order_lines = order_lines.filtered("referral_credit_wallet_id")
        move_lines = move_lines.filtered("referral_credit_wallet_id")
        for _step in range(4):
            moves = move_lines.move_id
            moves |= moves.reversal_move_ids | moves.reversed_entry_id
            new_move_lines = (
                moves.invoice_line_ids | order_lines.invoice_lines
            ).filtered("referral_credit_wallet_id") - move_lines
            new_order_lines = (
                move_lines.sale_line_ids.filtered("referral_credit_wallet_id")
                - order_lines
            )
            if not new_move_lines and not new_order_lines:
                break
            move_lines |= new_move_lines
            order_lines |= new_order_lines
        return order_lines, move_lines

    # ------------------------------------------------------------------
    # Bounded by the document
    # ------------------------------------------------------------------

    @api.model
    def _fit_documents(self, orders, moves):
        """Bring the documents that can still change back within their
        bounds: a confirmed order gives back the credit of a former customer;
        the credit lines of a document whose total fell below zero shrink to
        fit. Refused (UserError) for a confirmed order whose credit is
        already invoiced. Returns whether a document changed."""
        orders = orders.filtered(lambda o: o.state in ("draft", "sent", "sale"))
        moves = moves.filtered(
            lambda m: m.state == "draft"
            and m.move_type in ("out_invoice", "out_refund")
        )
        fitting = self.with_context(**{FITTING: True})
        changed = fitting._release_unbound_order_lines(
            orders.filtered(lambda o: o.state == "sale")
        )
        for document in [*orders, *moves]:
            changed |= bool(document._referral_fit_credit_lines())
        return changed

    @api.model
    def _release_unbound_order_lines(self, orders):
        """The customer of these confirmed orders changed (a contact moved
        to another company): the credit lines not invoiced yet give the
        former customer's credit back, removed, or set to zero when an
        invoice already refers to them (that invoice is refused until its
        credit is applied again)."""
        orders = orders.with_env(self.env)
        candidates = orders.order_line.filtered(
            lambda line: line.referral_credit_wallet_id
            and not self._is_bound(line, line.referral_credit_wallet_id)
            and not line.invoice_lines.filtered(lambda il: il.parent_state == "posted")
            and not line.currency_id.is_zero(line.price_total)
        )
        # Only what was spent while the binding held goes back; an order
        # being confirmed now is refused instead (``_check_bindings``).
        held, _debits = self._read_held(candidates, self.env[MOVE_LINE])
        candidates = candidates.filtered(
            lambda line: any(
                amount > 0 for amount in held.get((ORDER_LINE, line.id), {}).values()
            )
        )
        if not candidates:
            return False
        for order in candidates.order_id:
            lines = candidates.filtered(lambda line, o=order: line.order_id == o)
            wallets = lines.referral_credit_wallet_id
            amount = -sum(lines.mapped("price_total"))
            zeroed = lines.filtered("invoice_lines")
            (lines - zeroed).unlink()
            zeroed.write({"price_unit": 0.0})
            order.message_post(
                body=self.env._(
                    "The customer of this order is now %(customer)s: the "
                    "referral credit of %(wallets)s it carried (%(amount)s) "
                    "went back to that wallet.",
                    customer=order.partner_id.commercial_partner_id.display_name,
                    wallets=", ".join(wallets.partner_id.mapped("display_name")),
                    amount=format_amount(self.env, amount, order.currency_id),
                )
            )
        return True

    # ------------------------------------------------------------------
    # What they should spend
    # ------------------------------------------------------------------

    @api.model
    def _compute_targets(self, order_lines, move_lines, removed_keys=()):
        """({(model, line id): (wallet, credit the line spends now)},
        {(model, line id): holder}), in the company currency; negative for a
        credit note giving credit back. The holder is what holds the credits
        consumed for the line: the order line itself, or the invoice (its
        credit notes move its holding)."""
        targets, holders = {}, {}
        invoices = move_lines.filtered(lambda ln: ln.move_id.move_type == "out_invoice")
        for line in invoices:
            spends = line.parent_state == "posted" and (
                (MOVE_LINE, line.id) not in removed_keys
            )
            targets[MOVE_LINE, line.id] = (
                line.referral_credit_wallet_id,
                self._line_amount(line) if spends else 0.0,
            )
            holders[MOVE_LINE, line.id] = line.move_id
        self._compute_refund_targets(
            move_lines - invoices, targets, holders, removed_keys
        )
        for line in order_lines:
            amount = 0.0
            if (
                line.order_id.state == "sale"
                and (ORDER_LINE, line.id) not in removed_keys
            ):
                amount = self._line_amount(line) * self._uninvoiced_share(
                    line, removed_keys
                )
            targets[ORDER_LINE, line.id] = (
                line.referral_credit_wallet_id,
                line.order_id.company_id.currency_id.round(amount),
            )
            holders[ORDER_LINE, line.id] = line
        return targets, holders

    @api.model
    def _uninvoiced_share(self, order_line, removed_keys=()):
        """Share of a confirmed order's credit line that its posted invoices
        do not carry yet (their credit notes give their part back to the
        wallet, not to the order)."""
        if not order_line.product_uom_qty:
            return 0.0
        invoiced = sum(
            line.product_uom_id._compute_quantity(line.quantity, order_line.product_uom)
            for line in order_line.invoice_lines
            if line.parent_state == "posted"
            and line.move_id.move_type == "out_invoice"
            and (MOVE_LINE, line.id) not in removed_keys
        )
        return min(max(1.0 - invoiced / order_line.product_uom_qty, 0.0), 1.0)

    @api.model
    def _compute_refund_targets(self, refund_lines, targets, holders, removed_keys):
        """A posted credit note gives back its share of what its invoice
        spends for the same wallet (the credit note's credit over the
        invoice's, in the documents' currency), at most what the earlier
        credit notes of that invoice left."""
        left = {}
        for line in refund_lines.sorted(lambda ln: (ln.move_id.id, ln.id)):
            refund = line.move_id
            wallet = line.referral_credit_wallet_id
            origin_lines = self._refund_origin_lines(line)
            origin = origin_lines.move_id[:1]
            holders[MOVE_LINE, line.id] = origin or refund
            amount = 0.0
            if (
                origin
                and refund.move_type == "out_refund"
                and line.parent_state == "posted"
                and (MOVE_LINE, line.id) not in removed_keys
            ):
                spent = sum(
                    targets.get((MOVE_LINE, origin_line.id), (None, 0.0))[1]
                    for origin_line in origin_lines
                )
                key = (origin.id, wallet.id)
                left.setdefault(key, spent)
                base = -sum(origin_lines.mapped("price_total"))
                own = max(-line.price_total, 0.0)
                if refund.currency_id == origin.currency_id and base > 0:
                    share = spent * min(own / base, 1.0)
                else:
                    share = self._line_amount(line)
                amount = wallet.currency_id.round(min(share, max(left[key], 0.0)))
                left[key] -= amount
            targets[MOVE_LINE, line.id] = (wallet, -amount)

    @api.model
    def _refund_origin_lines(self, line):
        """The credit lines of the invoice a credit note line refunds, for
        the same wallet: its reversed invoice, else the first posted invoice
        made from the same order lines."""
        refund = line.move_id
        wallet = line.referral_credit_wallet_id
        origin = refund.reversed_entry_id
        if not origin and line.sale_line_ids:
            origin = line.sale_line_ids.invoice_lines.filtered(
                lambda il: il.move_id.move_type == "out_invoice"
                and il.parent_state == "posted"
                and il.referral_credit_wallet_id == wallet
            ).move_id.sorted("id")[:1]
        if origin.move_type != "out_invoice":
            return self.env[MOVE_LINE]
        return origin.invoice_line_ids.filtered(
            lambda ln: ln.referral_credit_wallet_id == wallet
        )

    @api.model
    def _line_amount(self, line):
        """Credit a line applies, in the company currency, converted from its
        own document's currency at its own date (0 for a line that would add
        to the total)."""
        document = self._document(line)
        amount = max(-line.price_total, 0.0)
        return document.company_id.currency_id.round(
            document._referral_to_company_currency(amount)
        )

    # ------------------------------------------------------------------
    # Binding: whose wallet a line spends
    # ------------------------------------------------------------------

    @api.model
    def _expected_customer(self, line):
        """The commercial entity whose wallet ``line`` may spend: its order's
        customer, for an invoice line made from an order too (an invoice
        address elsewhere does not move the credit); else its invoice's."""
        if line._name == ORDER_LINE:
            return line.order_id.partner_id.commercial_partner_id
        if line.sale_line_ids:
            return line.sale_line_ids.order_id.partner_id.commercial_partner_id[:1]
        return line.move_id._referral_credit_partner()

    @api.model
    def _is_bound(self, line, wallet):
        document = self._document(line)
        return (
            wallet.partner_id == self._expected_customer(line)
            and wallet.company_id == document.company_id
        )

    @api.model
    def _check_bindings(self, targets, held, line_by_key):
        """Refuse, before anything is written, a line about to spend (more
        of) the wallet of another customer than its document's (a contact
        moved to another company since the credit was applied). What was
        spent while the binding held stays spent."""
        for key, (wallet, amount) in sorted(targets.items()):
            line = line_by_key.get(key)
            if (
                not wallet
                or not line
                or wallet.currency_id.compare_amounts(
                    amount, held.get(key, {}).get(wallet, 0.0)
                )
                <= 0
                or self._is_bound(line, wallet)
            ):
                continue
            document = self._document(line)
            raise UserError(
                self.env._(
                    "%(document)s carries the referral credit of %(wallet)s, "
                    "but its customer is now %(customer)s: that credit can no "
                    "longer be spent on it. Apply the credit again (on a "
                    "quotation: Fit Referral Credit; on an invoice: remove the "
                    "credit lines or apply the customer's credit), then try "
                    "again.",
                    document=document.display_name,
                    wallet=wallet.partner_id.display_name,
                    customer=self._expected_customer(line).display_name,
                )
            )

    @api.model
    def _check_line_wallets(self, lines):
        """A credit line spends the wallet of its document's customer
        (commercial entity) in the document's company, never another one;
        a credit note's lines give back to the wallets its invoice spent.
        Invoice credit lines live on customer invoices and credit notes."""
        for line in lines.filtered("referral_credit_wallet_id"):
            wallet = line.referral_credit_wallet_id
            document = self._document(line)
            allowed = self._is_bound(line, wallet)
            if line._name == MOVE_LINE:
                if document.move_type not in ("out_invoice", "out_refund"):
                    allowed = False
                elif document.move_type == "out_refund" and not allowed:
                    allowed = bool(self._refund_origin_lines(line))
            if not allowed:
                raise ValidationError(
                    self.env._(
                        "%(document)s can only spend the referral credit of its "
                        "customer %(customer)s in %(company)s, not the wallet "
                        "of %(wallet)s.",
                        document=document.display_name,
                        customer=self._expected_customer(line).display_name,
                        company=document.company_id.name,
                        wallet=wallet.sudo().display_name,
                    )
                )

    # ------------------------------------------------------------------
    # What the ledger holds
    # ------------------------------------------------------------------

    @api.model
    def _read_held(self, order_lines, move_lines):
        """({(model, line id): {wallet: credit the line holds}}, {(model,
        line id): id of its latest debit}) from the posted transactions: one
        query per kind of line."""
        Transaction = self.env["referral.wallet.transaction"]
        held = defaultdict(lambda: defaultdict(float))
        debits = {}
        links = (
            (
                ORDER_LINE,
                "sale_order_line_id",
                [
                    ("sale_order_line_id", "in", order_lines.ids),
                    ("move_line_id", "=", False),
                ],
            ),
            (MOVE_LINE, "move_line_id", [("move_line_id", "in", move_lines.ids)]),
        )
        for model, field, domain in links:
            if not (order_lines if model == ORDER_LINE else move_lines):
                continue
            for (
                line,
                wallet,
                transaction_type,
                amount,
                last_id,
            ) in Transaction._read_group(
                domain + [("state", "=", "posted")],
                [field, "wallet_id", "transaction_type"],
                ["signed_amount:sum", "id:max"],
            ):
                held[model, line.id][wallet] -= amount
                if transaction_type == "debit":
                    debits[model, line.id] = max(
                        debits.get((model, line.id), 0), last_id
                    )
        return held, debits

    # ------------------------------------------------------------------
    # Post the difference
    # ------------------------------------------------------------------

    @api.model
    def _post_differences(self, targets, holders, held, line_by_key):
        """Under a lock of the wallets: give back first (restoring the
        credits consumed), expire what is overdue, then spend."""
        plan = defaultdict(lambda: defaultdict(list))
        for key in sorted(set(targets) | set(held)):
            target_wallet, target = targets.get(key, (None, 0.0))
            held_by_wallet = held.get(key, {})
            line = line_by_key[key]
            for wallet in set(held_by_wallet) | ({target_wallet} - {None}):
                if not wallet:
                    continue
                wanted = target if wallet == target_wallet else 0.0
                diff = wallet.currency_id.round(wanted - held_by_wallet.get(wallet, 0))
                if wallet.currency_id.is_zero(diff):
                    continue
                holder = holders.get(key) or self._document(line)
                plan[wallet][holder].append((line, diff))
        wallets = self.env["referral.wallet"].browse(sorted({w.id for w in plan}))
        Transaction = self.env["referral.wallet.transaction"]
        if not wallets:
            return Transaction
        wallets._lock()
        wallets._expire_overdue_credits()
        transactions = Transaction
        spendings = defaultdict(list)
        for wallet in wallets:
            for holder, items in plan[wallet].items():
                transactions |= self._post_transfers(wallet, holder, items)
                for line, diff in items:
                    if wallet.currency_id.compare_amounts(diff, 0) < 0:
                        transactions |= wallet._give_back(
                            -diff,
                            holder,
                            **self._prepare_line_transaction_values(line, "release"),
                        )
                    elif wallet.currency_id.compare_amounts(diff, 0) > 0:
                        spendings[wallet].append((line, diff, holder))
        if transactions:
            wallets._expire_overdue_credits()
            self._revoke_restored_rewards(transactions)
        if spendings:
            self._check_balances(
                wallets,
                {w: [(ln, a) for ln, a, _h in items] for w, items in spendings.items()},
            )
        for wallet in wallets:
            for line, amount, holder in spendings.get(wallet, []):
                transactions |= wallet._spend(
                    amount,
                    holder=holder,
                    prefer=self._credits_restored_by(line),
                    **self._prepare_line_transaction_values(line, "spend"),
                )
        return transactions

    @api.model
    def _post_transfers(self, wallet, holder, items):
        """Within one holder (an invoice and its credit notes), a release
        and a spending at once cancel out (an invoice reset while its credit
        note stays posted): post both transactions without moving any
        credit, and leave in ``items`` what remains to release or spend."""
        currency = wallet.currency_id
        releases = sum(-diff for _line, diff in items if diff < 0)
        spendings = sum(diff for _line, diff in items if diff > 0)
        paired = currency.round(min(releases, spendings))
        if currency.compare_amounts(paired, 0) <= 0:
            return self.env["referral.wallet.transaction"]
        Transaction = self.env["referral.wallet.transaction"].sudo()
        vals_list = []
        budgets = {"release": paired, "spend": paired}
        for index, (line, diff) in enumerate(items):
            kind = "release" if diff < 0 else "spend"
            amount = currency.round(min(abs(diff), budgets[kind]))
            if currency.compare_amounts(amount, 0) <= 0:
                continue
            budgets[kind] = currency.round(budgets[kind] - amount)
            items[index] = (
                line,
                currency.round(diff + (amount if diff < 0 else -amount)),
            )
            vals_list.append(
                {
                    "wallet_id": wallet.id,
                    "transaction_type": "reversal" if kind == "release" else "debit",
                    "direction": "in" if kind == "release" else "out",
                    "amount": amount,
                    "remaining_amount": 0.0,
                    "reversed_transaction_id": (
                        wallet._last_debit_of(holder).id if kind == "release" else False
                    ),
                    **self._prepare_line_transaction_values(line, kind),
                }
            )
        return Transaction.create(vals_list)

    @api.model
    def _credits_restored_by(self, line):
        """The credits a credit note line gave back: taken back first when
        it gives back less."""
        if line._name != MOVE_LINE or line.move_id.move_type != "out_refund":
            return self.env["referral.wallet.transaction"]
        return (
            self.env["referral.wallet.allocation"]
            .sudo()
            .search([("transaction_id.move_line_id", "=", line.id), ("amount", "<", 0)])
            .credit_id.filtered(lambda c: c.remaining_amount > 0)
        )

    @api.model
    def _check_balances(self, wallets, spendings):
        """Refuse, naming the documents, when a wallet cannot pay what its
        documents now spend (read after the lock and the releases)."""
        balances = wallets._read_posted_balances()
        for wallet in wallets:
            lines = spendings.get(wallet, [])
            needed = sum(amount for _line, amount in lines)
            shortfall = wallet.currency_id.round(needed - balances[wallet.id])
            if shortfall > wallet.currency_id.rounding:
                raise UserError(
                    self.env._(
                        "%(customer)s has %(balance)s of referral credit, less "
                        "than the %(amount)s to spend on %(documents)s. Lower or "
                        "remove the credit applied (on a quotation: Fit Referral "
                        "Credit), then try again.",
                        customer=wallet.partner_id.display_name,
                        balance=wallet._format_amount(balances[wallet.id]),
                        amount=wallet._format_amount(needed),
                        documents=", ".join(
                            sorted({self._document(line).name for line, _a in lines})
                        ),
                    )
                )

    @api.model
    def _document(self, line):
        return line.order_id if line._name == ORDER_LINE else line.move_id

    @api.model
    def _prepare_line_transaction_values(self, line, kind):
        """Name and links of a transaction posted for ``line``."""
        document = self._document(line)
        if kind == "spend":
            name = self.env._("Credit spent on %(document)s", document=document.name)
        elif line._name == MOVE_LINE and document.move_type == "out_refund":
            name = self.env._("Credit restored by %(document)s", document=document.name)
        else:
            name = self.env._("Credit released by %(document)s", document=document.name)
        if line._name == ORDER_LINE:
            return {"name": name, "sale_order_line_id": line.id}
        return {"name": name, "move_line_id": line.id}

    # ------------------------------------------------------------------
    # Rewards
    # ------------------------------------------------------------------

    @api.model
    def _sync_rewards(self, referrals, lock_referrals=True, announce_zero=False):
        """Post, for each referral, the difference between the reward its
        referee's documents earn now and what the ledger holds for it: a
        reward granted (posted, or pending approval) once the qualifying
        order earns it, cancelled or reversed when it no longer does (what
        the sponsor already spent stays spent: it is reversed as soon as the
        documents that spent it give it back). The wallet rows are locked in
        ascending id order before anything is written."""
        # sudo: the reward follows the referee's documents whoever changes
        # them; wallets are not writable through access rights.
        referrals = referrals.sudo().exists()
        Transaction = self.env["referral.wallet.transaction"].sudo()
        if not referrals:
            return Transaction
        if lock_referrals:
            self.env.cr.execute(
                SQL(
                    "SELECT id FROM referral_referral WHERE id IN %s "
                    "ORDER BY id FOR UPDATE",
                    tuple(referrals.ids),
                ),
                # A concurrent grant refuses this one: retried, not an error.
                log_exceptions=False,
            )
            referrals.invalidate_recordset()
        qualifying = referrals._get_reward_qualifying_orders()
        earning = referrals.filtered(
            lambda r: r._is_reward_earned(qualifying[r])
            and not r.transaction_ids.filtered(
                lambda t: t.transaction_type == "credit" and t.state == "pending"
            )
            and r.state != "rewarded"
        )
        wallets = referrals.transaction_ids.wallet_id
        for company in earning.company_id:
            wallets |= self.env["referral.wallet"]._get_or_create(
                earning.filtered(lambda r, c=company: r.company_id == c).sponsor_id,
                company,
            )
        wallets = wallets.sudo().browse(sorted(wallets.ids))
        # Locked, not marked yet: a spender waiting for these rows is not
        # failed by credit added (see _mark_rewarded_wallets).
        wallets._lock(mark=False)
        lowered = wallets._expire_overdue_credits().wallet_id
        referrals._update_reward_states(qualifying)
        transactions = Transaction
        for referral in referrals:
            if referral._is_reward_earned(qualifying[referral]):
                continue
            transactions |= self._revoke_reward(referral)
            lowered |= referral.transaction_ids.wallet_id
        transactions |= self._grant_rewards(earning, qualifying, wallets, announce_zero)
        self._mark_rewarded_wallets(wallets, lowered)
        return transactions

    @api.model
    def _mark_rewarded_wallets(self, wallets, lowered):
        """Mark (``referral.wallet._mark_changed``) what a transaction
        waiting for the rewarded ``wallets`` must not read from its older
        snapshot: the wallets whose balance went down (``lowered``: credit
        expired or reversed), and every wallet of a company where a program
        caps the credit earned per year (the next reward reads what this
        one earned). A wallet that only received credit stays unmarked: a
        spender waiting for it reads less credit than there is, never more,
        and goes on instead of failing to serialize."""
        capped = (
            self.env["referral.program"]
            .sudo()
            .with_context(active_test=False)
            .search(
                [
                    ("company_id", "in", wallets.company_id.ids),
                    ("yearly_cap_amount", ">", 0),
                ]
            )
            .company_id
        )
        (lowered | wallets.filtered(lambda w: w.company_id in capped))._mark_changed()

    @api.model
    def _grant_rewards(self, referrals, qualifying, wallets, announce_zero):
        """Credit the sponsors of ``referrals``: the program's reward less
        what they still hold of a former reward of the same referral (spent
        before it was revoked), posted or pending approval."""
        wallet_by_key = {(w.partner_id, w.company_id): w for w in wallets}
        earned = self.env["referral.referral"]._read_earned_this_year(wallets)
        today = fields.Date.context_today(self)
        vals_list, settled = [], self.env["referral.referral"]
        for referral in referrals:
            wallet = wallet_by_key[referral.sponsor_id, referral.company_id]
            outstanding = referral._get_reward_net_amount()
            amount = referral.program_id._compute_reward_amount(
                qualifying[referral], earned[wallet.id] - outstanding
            )
            difference = referral.currency_id.round(amount - outstanding)
            if referral.currency_id.compare_amounts(difference, 0) <= 0:
                if not referral.currency_id.is_zero(amount):
                    settled |= referral
                elif announce_zero:
                    referral.message_post(
                        body=self.env._(
                            "No credit earned for this referral: the reward is "
                            "zero or the sponsor reached the program's yearly "
                            "cap."
                        )
                    )
                continue
            earned[wallet.id] += difference
            vals_list.append(referral._prepare_reward_values(wallet, difference, today))
        transactions = self.env["referral.wallet.transaction"].sudo().create(vals_list)
        posted = transactions.filtered(lambda t: t.state == "posted")
        (posted.referral_id | settled)._on_reward_posted(posted)
        (transactions - posted).referral_id._schedule_reward_approval()
        return transactions

    @api.model
    def _revoke_reward(self, referral):
        """The referral no longer earns its reward: cancel what waits for
        approval, reverse what is left of what was posted."""
        rewards = referral.transaction_ids.filtered(
            lambda t: t.transaction_type == "credit"
            and t.state in ("posted", "pending")
        )
        pending = rewards.filtered(lambda t: t.state == "pending")
        pending.write({"state": "cancelled"})
        reversible = rewards.filtered(
            lambda t: t.state == "posted" and t.remaining_amount > 0
        )
        return reversible._reverse()

    @api.model
    def _revoke_restored_rewards(self, transactions):
        """Credit given back into a revoked reward (spent before the
        revocation) is revoked at once: the referral's reward is never
        earned twice."""
        restored = (
            self.env["referral.wallet.allocation"]
            .sudo()
            .search([("transaction_id", "in", transactions.ids), ("amount", "<", 0)])
            .credit_id
        )
        referrals = restored.referral_id.filtered(lambda r: r.state != "rewarded")
        if referrals:
            self._sync_rewards(referrals, lock_referrals=False)

    # ------------------------------------------------------------------
    # Books: the journal entries of the credit
    # ------------------------------------------------------------------

    @api.model
    def _book_transactions(self, transactions):
        """Post the journal entry of each posted transaction that moves the
        credit outside documents, in its company's referral journal and
        currency, dated like the transaction, partner the sponsor:

        - a reward (or credit added by hand): debit the reward expense (or
          the adjustment's account), credit the liability;
        - credit removed by hand: the reverse;
        - expiry: debit the liability, credit the expired-credit income;
        - a reversal of a booked transaction: Odoo's reversal of its entry
          (for the part reversed);
        - what documents spend or give back books nothing here: their credit
          lines post to the liability account themselves (see
          ``_book_credit_lines``).

        The transaction links to its entry, the entry to its transaction."""
        transactions = transactions.sudo().filtered(
            lambda t: t.state == "posted"
            and not t.account_move_id
            and not (
                t.sale_order_id
                or t.sale_order_line_id
                or t.invoice_id
                or t.move_line_id
            )
        )
        Move = self.env["account.move"].sudo()
        programs = {}
        for company in transactions.company_id:
            programs[company] = self.env["referral.program"]._get_books_program(company)
        transactions = transactions.filtered(lambda t: programs[t.company_id])
        if not transactions:
            return Move
        counterpart = self.env["account.account"].browse(
            self.env.context.get("referral_books_account_id")
        )
        reversals, vals_list, booked = [], [], []
        for transaction in transactions:
            program = programs[transaction.company_id]
            origin = transaction.reversed_transaction_id.account_move_id
            if transaction.transaction_type == "reversal" and origin:
                reversals.append((transaction, origin))
                continue
            liability = program.credit_liability_account_id
            if transaction.transaction_type == "expiry":
                other = program.expired_credit_account_id
            elif transaction.transaction_type == "adjustment" and counterpart:
                other = counterpart
            else:
                other = program.reward_expense_account_id
            # Credit owed grows: the liability is credited.
            sign = 1 if transaction.direction == "in" else -1
            vals_list.append(
                self._prepare_entry_values(
                    program,
                    transaction.partner_id,
                    transaction.date,
                    transaction.name,
                    [
                        (other, sign * transaction.amount),
                        (liability, -sign * transaction.amount),
                    ],
                )
            )
            booked.append(transaction)
        moves = Move.create(vals_list) if vals_list else Move
        for transaction, origin in reversals:
            moves |= self._reverse_entry(transaction, origin)
            booked.append(transaction)
        moves.filtered(lambda m: m.state == "draft")._post(soft=False)
        for transaction, move in zip(booked, moves, strict=True):
            transaction.account_move_id = move
        return moves

    @api.model
    def _prepare_entry_values(self, program, partner, date, ref, amounts):
        """An entry of ``program``'s journal: [(account, debit - credit)]
        in the company currency."""
        return {
            "move_type": "entry",
            "journal_id": program.credit_journal_id.id,
            "company_id": program.company_id.id,
            "date": date,
            "ref": ref,
            "line_ids": [
                Command.create(
                    {
                        "account_id": account.id,
                        "partner_id": partner.id,
                        "name": ref,
                        "balance": balance,
                    }
                )
                for account, balance in amounts
                if not program.currency_id.is_zero(balance)
            ],
        }

    @api.model
    def _reverse_entry(self, transaction, origin):
        """Odoo's reversal of ``origin`` for the amount ``transaction``
        reverses (a revoked reward reverses what is left of it)."""
        reversal = origin._reverse_moves(
            [{"date": transaction.date, "ref": transaction.name}]
        )
        full = sum(
            origin.line_ids.filtered(lambda ln: ln.balance > 0).mapped("balance")
        )
        currency = origin.company_id.currency_id
        if full and currency.compare_amounts(full, transaction.amount) != 0:
            # The entries of the ledger have two lines of the same amount.
            reversal.write(
                {
                    "line_ids": [
                        Command.update(
                            line.id,
                            {
                                "balance": transaction.amount
                                if line.balance > 0
                                else -transaction.amount
                            },
                        )
                        for line in reversal.line_ids
                    ]
                }
            )
        return reversal

    @api.model
    def _book_credit_lines(self, move_lines):
        """Keep the liability exact for the credit lines of invoices and
        credit notes: an invoice posts to the liability account its credit
        lines' untaxed amounts (and the tax of taxes without an account of
        their own) while the wallet pays, or gets back, the credit taxes
        included, converted at the document's date. The difference (the
        tax share in the discount mode, rounding) is booked on the
        liability against the reward expense, per document, as the
        difference between what it should add and what was booked for it
        already: any path, one result."""
        Move = self.env["account.move"].sudo()
        lines = move_lines.sudo().filtered(
            lambda ln: ln.move_id.move_type in ("out_invoice", "out_refund")
        )
        programs = {
            company: self.env["referral.program"]._get_books_program(company)
            for company in lines.company_id
        }
        lines = lines.filtered(
            lambda ln: programs[ln.company_id]
            and ln.account_id == programs[ln.company_id].credit_liability_account_id
        )
        if not lines:
            return Move
        held, _debits = self._read_held(self.env[ORDER_LINE], lines)
        booked = defaultdict(float)
        for entry, balance in (
            self.env["account.move.line"]
            .sudo()
            ._read_group(
                [
                    ("move_id.referral_credit_line_id", "in", lines.ids),
                    ("parent_state", "=", "posted"),
                    ("account_id", "in", lines.account_id.ids),
                ],
                ["move_id"],
                ["balance:sum"],
            )
        ):
            booked[entry.referral_credit_line_id.move_id] += balance
        vals_list = []
        for document in lines.move_id:
            program = programs[document.company_id]
            liability = program.credit_liability_account_id
            currency = program.currency_id
            credit_lines = lines.filtered(lambda ln, d=document: ln.move_id == d)
            # Debit on the liability: what the wallet paid less what the
            # document itself debits.
            paid = sum(
                sum(held.get((MOVE_LINE, line.id), {}).values())
                for line in credit_lines
            )
            own = (
                sum(
                    document.line_ids.filtered(
                        lambda ln, a=liability: ln.account_id == a
                    ).mapped("balance")
                )
                if document.state == "posted"
                else 0.0
            )
            missing = currency.round(paid - own - booked[document])
            if currency.is_zero(missing):
                continue
            values = self._prepare_entry_values(
                program,
                credit_lines[0].referral_credit_wallet_id.partner_id,
                document.date,
                self.env._(
                    "Referral credit of %(document)s: tax share",
                    document=document.name,
                ),
                [(liability, missing), (program.reward_expense_account_id, -missing)],
            )
            values["referral_credit_line_id"] = credit_lines[0].id
            vals_list.append(values)
        moves = Move.create(vals_list) if vals_list else Move
        moves._post(soft=False)
        return moves

    @api.model
    def _book_opening_balances(self, programs):
        """One entry per sponsor, dated today, bringing each program's
        liability account to what the reconciliation expects (the wallet
        balance and the credit held by confirmed orders not invoiced):
        the credit owed before the books were kept."""
        Move = self.env["account.move"].sudo()
        Report = self.env["referral.credit.reconciliation"].sudo()
        today = fields.Date.context_today(self)
        vals_list = []
        for program in programs.sudo():
            company = program.company_id
            for row in Report.search([("company_id", "=", company.id)]):
                if company.currency_id.is_zero(row.difference):
                    continue
                # difference = liability - owed: credit the liability by
                # what it lacks.
                vals_list.append(
                    self._prepare_entry_values(
                        program,
                        row.partner_id,
                        today,
                        self.env._("Referral credit: opening balance"),
                        [
                            (program.reward_expense_account_id, -row.difference),
                            (program.credit_liability_account_id, row.difference),
                        ],
                    )
                )
        moves = Move.create(vals_list) if vals_list else Move
        moves._post(soft=False)
        return moves
