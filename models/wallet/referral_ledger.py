# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The only writer of the credit that documents spend.

What a credit line of a sales order or a customer invoice spends is derived
from its document's current state, never from the path that led there:

- a confirmed order's credit line spends its amount, less what the posted
  invoices made from it carry;
- a posted customer invoice's credit line spends its amount;
- a posted credit note's credit line gives back its amount, at most what its
  origin invoice still spends;
- draft and cancelled documents, and removed lines, spend nothing.

``_sync`` compares that target with what the ledger holds for each line (the
posted transactions linked to it) and posts the difference: a debit when the
line spends more, a reversal when it spends less. After any sequence of
operations, a wallet's balance plus the credit its live documents carry is
the credit earned, less what expired, plus the manual adjustments.
"""

from collections import defaultdict

from odoo import api, models
from odoo.exceptions import UserError, ValidationError

ORDER_LINE = "sale.order.line"
MOVE_LINE = "account.move.line"


class ReferralLedger(models.AbstractModel):
    _name = "referral.ledger"
    _description = "Referral Credit Ledger"

    @api.model
    def _sync(self, order_lines=None, move_lines=None, removed=None):
        """Post, for the credit lines connected to ``order_lines`` and
        ``move_lines`` (their invoices, credit notes and orders), the
        difference between what they spend now and what the ledger holds for
        them. ``removed`` lines are about to be deleted: they spend nothing.
        Raises a UserError, writing nothing, when a wallet cannot pay."""
        # sudo: spending follows the documents whoever changes them; the
        # ledger is never writable through access rights.
        self = self.sudo()
        order_lines = (order_lines or self.env[ORDER_LINE]).sudo()
        move_lines = (move_lines or self.env[MOVE_LINE]).sudo()
        order_lines, move_lines = self._collect(order_lines, move_lines)
        if not order_lines and not move_lines:
            return self.env["referral.wallet.transaction"]
        removed_keys = {(line._name, line.id) for line in (removed or [])}
        targets = self._compute_targets(order_lines, move_lines, removed_keys)
        held, debits = self._read_held(order_lines, move_lines)
        line_by_key = {
            (line._name, line.id): line for line in [*order_lines, *move_lines]
        }
        return self._post_differences(targets, held, debits, line_by_key)

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
    # What they should spend
    # ------------------------------------------------------------------

    @api.model
    def _compute_targets(self, order_lines, move_lines, removed_keys=()):
        """{(model, line id): (wallet, credit the line spends now)}, in the
        company currency; negative for a credit note giving credit back."""
        targets = {}
        invoices = move_lines.filtered(lambda ln: ln.move_id.move_type == "out_invoice")
        for line in invoices:
            spends = line.move_id.state == "posted" and (
                (MOVE_LINE, line.id) not in removed_keys
            )
            targets[MOVE_LINE, line.id] = (
                line.referral_credit_wallet_id,
                self._line_amount(line) if spends else 0.0,
            )
        self._compute_refund_targets(move_lines - invoices, targets, removed_keys)
        # What the posted invoices made from an order line carry; their
        # credit notes give their part back to the wallet, not to the order.
        carried = defaultdict(float)
        for line in invoices:
            for order_line in line.sale_line_ids:
                carried[order_line.id] += targets[MOVE_LINE, line.id][1]
        for line in order_lines:
            amount = 0.0
            if (
                line.order_id.state == "sale"
                and (ORDER_LINE, line.id) not in removed_keys
            ):
                amount = self._line_amount(line)
                amount = min(max(amount - carried[line.id], 0.0), amount)
            targets[ORDER_LINE, line.id] = (line.referral_credit_wallet_id, amount)
        return targets

    @api.model
    def _compute_refund_targets(self, refund_lines, targets, removed_keys):
        """A posted credit note gives back its credit lines' amount, at most
        what its origin invoice spends for the same wallet, less what the
        earlier credit notes of that invoice give back."""
        left = {}
        for line in refund_lines.sorted(lambda ln: (ln.move_id.id, ln.id)):
            refund = line.move_id
            wallet = line.referral_credit_wallet_id
            amount = 0.0
            if (
                refund.move_type == "out_refund"
                and refund.state == "posted"
                and (MOVE_LINE, line.id) not in removed_keys
            ):
                key = (refund.reversed_entry_id.id, wallet.id)
                if key not in left:
                    left[key] = sum(
                        amount
                        for (model, line_id), (line_wallet, amount) in targets.items()
                        if model == MOVE_LINE
                        and line_wallet == wallet
                        and line_id in refund.reversed_entry_id.invoice_line_ids.ids
                    )
                amount = min(self._line_amount(line), max(left[key], 0.0))
                left[key] -= amount
            targets[MOVE_LINE, line.id] = (wallet, -amount)

    @api.model
    def _line_amount(self, line):
        """Credit a line applies, in the company currency (0 for a line that
        would add to the total). Invoice lines made from an order line, and
        credit notes, use the rate of the document they come from, so that
        they carry exactly what it spent."""
        amount = max(-line.price_total, 0.0)
        if line._name == ORDER_LINE:
            document = line.order_id
        elif line.sale_line_ids:
            document = line.sale_line_ids.order_id[:1]
        elif line.move_id.reversed_entry_id:
            document = line.move_id.reversed_entry_id
        else:
            document = line.move_id
        return document.company_id.currency_id.round(
            document._referral_to_company_currency(amount)
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
    def _post_differences(self, targets, held, debits, line_by_key):
        """Give back first, then spend, wallet by wallet, under a lock."""
        releases = defaultdict(list)
        spendings = defaultdict(list)
        keys = set(targets) | set(held)
        for key in sorted(keys):
            target_wallet, target = targets.get(key, (None, 0.0))
            held_by_wallet = held.get(key, {})
            for wallet in set(held_by_wallet) | ({target_wallet} - {None}):
                if not wallet:
                    continue
                wanted = target if wallet == target_wallet else 0.0
                diff = wallet.currency_id.round(wanted - held_by_wallet.get(wallet, 0))
                if wallet.currency_id.is_zero(diff):
                    continue
                (spendings if diff > 0 else releases)[wallet].append(
                    (line_by_key[key], abs(diff))
                )
        wallets = self.env["referral.wallet"].browse(
            sorted({w.id for w in set(releases) | set(spendings)})
        )
        if not wallets:
            return self.env["referral.wallet.transaction"]
        wallets._lock()
        wallets._expire_overdue_credits()
        transactions = self.env["referral.wallet.transaction"]
        origin_debits = self._find_origin_debits(releases, debits)
        for wallet in wallets:
            for line, amount in releases.get(wallet, []):
                transactions |= wallet._give_back(
                    amount,
                    origin_debits.get((line._name, line.id)),
                    **self._prepare_line_transaction_values(line, "release"),
                )
        if spendings:
            self._check_balances(wallets, spendings)
        for wallet in wallets:
            for line, amount in spendings.get(wallet, []):
                transactions |= wallet._spend(
                    amount, **self._prepare_line_transaction_values(line, "spend")
                )
        return transactions

    @api.model
    def _find_origin_debits(self, releases, debits):
        """{(model, line id): the debit a release gives back}: the line's own
        latest debit, or, for a credit note, the latest debit of the invoice
        or order lines it refunds (its expiry date is kept). One query for
        all the credit notes' lines."""
        Transaction = self.env["referral.wallet.transaction"]
        released = [line for lines in releases.values() for line, _amount in lines]
        origins = {}
        for line in released:
            if not debits.get((line._name, line.id)) and line._name == MOVE_LINE:
                origins[line] = (
                    line.move_id.reversed_entry_id.invoice_line_ids.filtered(
                        lambda ln, w=line.referral_credit_wallet_id: (
                            ln.referral_credit_wallet_id == w
                        )
                    ),
                    line.sale_line_ids,
                )
        latest = {}
        if origins:
            move_lines = self.env[MOVE_LINE].union(*(o[0] for o in origins.values()))
            order_lines = self.env[ORDER_LINE].union(*(o[1] for o in origins.values()))
            for move_line, order_line, last_id in Transaction._read_group(
                [
                    "|",
                    ("move_line_id", "in", move_lines.ids),
                    ("sale_order_line_id", "in", order_lines.ids),
                    ("transaction_type", "=", "debit"),
                    ("state", "=", "posted"),
                ],
                ["move_line_id", "sale_order_line_id"],
                ["id:max"],
            ):
                for origin in (move_line, order_line):
                    if origin:
                        key = (origin._name, origin.id)
                        latest[key] = max(latest.get(key, 0), last_id)
        found = {}
        for line in released:
            key = (line._name, line.id)
            debit_id = debits.get(key)
            if not debit_id and line in origins:
                debit_id = max(
                    (
                        latest.get((origin._name, origin.id), 0)
                        for origin in [*origins[line][0], *origins[line][1]]
                    ),
                    default=0,
                )
            if debit_id:
                found[key] = Transaction.browse(debit_id)
        return found

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
    def _check_line_wallets(self, lines):
        """A credit line spends the wallet of its document's customer
        (commercial entity) in the document's company, never another one;
        invoice credit lines live on customer invoices and credit notes."""
        for line in lines.filtered("referral_credit_wallet_id"):
            wallet = line.referral_credit_wallet_id
            document = self._document(line)
            customer = document.partner_id.commercial_partner_id
            if (
                wallet.partner_id != customer
                or wallet.company_id != document.company_id
                or (
                    line._name == MOVE_LINE
                    and document.move_type not in ("out_invoice", "out_refund")
                )
            ):
                raise ValidationError(
                    self.env._(
                        "%(document)s can only spend the referral credit of its "
                        "customer %(customer)s in %(company)s, not the wallet "
                        "of %(wallet)s.",
                        document=document.display_name,
                        customer=customer.display_name,
                        company=document.company_id.name,
                        wallet=wallet.sudo().display_name,
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
