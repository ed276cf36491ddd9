# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import re

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import AccessError, UserError, ValidationError
from odoo.tools import SQL, format_amount

from .referral_wallet_transaction import EXPIRY_WARNING_DAYS

# The referral credit statement, printed from wallets and the portal.
STATEMENT_REPORT = "sale_referral_lifecycle.action_report_referral_statement"
# States of the PDF engine (wkhtmltopdf) in which Odoo prints PDF; in the
# others (missing, broken, too few workers) reports are shown as web pages.
PDF_ENGINE_STATES = ("ok", "upgrade")
# Transactions that add credit, consumed oldest first.
INFLOW_TYPES = ("credit", "adjustment", "reversal")
# What users (salespeople, the sponsor through the portal) may write on a
# wallet: the sponsor's choice of how its credit is spent on renewals.
RENEWAL_PREFERENCE_FIELDS = frozenset({"renewal_auto_apply", "renewal_max_amount"})
# Largest limit per renewal a sponsor may set (beyond it, no limit is meant).
MAX_RENEWAL_AMOUNT = 1_000_000_000


class ReferralWallet(models.Model):
    _name = "referral.wallet"
    _inherit = ["mail.thread"]
    _description = "Referral Credit Wallet"
    _order = "partner_id, company_id"
    _rec_name = "partner_id"
    _check_company_auto = True
    # Whoever may read a wallet may send its statement from the chatter.
    _mail_post_access = "read"

    balance = fields.Monetary(
        compute="_compute_amounts",
        currency_field="currency_id",
        help="Sum of the posted transactions: the credit the sponsor can spend.",
    )
    pending_amount = fields.Monetary(
        string="Awaiting Approval",
        compute="_compute_amounts",
        currency_field="currency_id",
    )
    spendable_balance = fields.Monetary(
        string="Spendable Now",
        compute="_compute_amounts",
        currency_field="currency_id",
        help="The balance less the credit past its expiry date that the daily "
        "job has not removed yet: what documents may spend today.",
    )
    transaction_count = fields.Integer(compute="_compute_amounts")
    partner_id = fields.Many2one(
        "res.partner",
        string="Sponsor",
        required=True,
        index=True,
        ondelete="restrict",
        readonly=True,
        domain="[('is_company', '=', True)]",
        help="Commercial entity owning the credit.",
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        readonly=True,
        default=lambda self: self.env.company,
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    transaction_ids = fields.One2many(
        "referral.wallet.transaction", "wallet_id", string="Transactions"
    )
    # The sponsor's choice (portal /my/wallet): how its credit is spent on
    # its renewals, within what the program allows.
    renewal_auto_apply = fields.Boolean(
        string="Apply on Renewals Automatically",
        default=True,
        tracking=True,
        help="The sponsor's choice: its credit is applied by itself on its "
        "renewal quotations (when the program applies credit automatically). "
        "Unticked, a salesperson applies it on request only.",
    )
    renewal_max_amount = fields.Monetary(
        string="Most Credit per Renewal",
        currency_field="currency_id",
        tracking=True,
        help="The sponsor's choice: the most credit one renewal takes, in the "
        "company currency. 0 means no limit of its own (the program's limit "
        "still applies).",
    )

    _sql_constraints = [
        (
            "partner_company_uniq",
            "UNIQUE(partner_id, company_id)",
            "A sponsor has one referral credit wallet per company.",
        ),
    ]

    @api.depends(
        "transaction_ids.state",
        "transaction_ids.signed_amount",
        "transaction_ids.remaining_amount",
    )
    def _compute_amounts(self):
        Transaction = self.env["referral.wallet.transaction"]
        overdue = dict(
            Transaction._read_group(
                Transaction._overdue_domain(self),
                ["wallet_id"],
                ["remaining_amount:sum"],
            )
        )
        totals = {
            (wallet.id, state): (amount, count)
            for wallet, state, amount, count in self.env[
                "referral.wallet.transaction"
            ]._read_group(
                [("wallet_id", "in", self.ids), ("state", "in", ("posted", "pending"))],
                ["wallet_id", "state"],
                ["signed_amount:sum", "__count"],
            )
        }
        for wallet in self:
            posted, posted_count = totals.get((wallet.id, "posted"), (0.0, 0))
            pending, pending_count = totals.get((wallet.id, "pending"), (0.0, 0))
            wallet.balance = posted
            wallet.spendable_balance = wallet.currency_id.round(
                posted - overdue.get(wallet, 0.0)
            )
            wallet.pending_amount = pending
            wallet.transaction_count = posted_count + pending_count

    @api.constrains("renewal_max_amount")
    def _check_renewal_max_amount(self):
        for wallet in self:
            amount = wallet.renewal_max_amount
            if not 0 <= amount <= MAX_RENEWAL_AMOUNT:
                raise ValidationError(
                    self.env._(
                        "The most credit per renewal of %(wallet)s must be an "
                        "amount from 0 (no limit) to %(maximum)s.",
                        wallet=wallet.display_name,
                        maximum=wallet._format_amount(MAX_RENEWAL_AMOUNT),
                    )
                )

    def write(self, vals):
        if not self.env.su and set(vals) - RENEWAL_PREFERENCE_FIELDS:
            # Users change the sponsor's choice only; the rest is the
            # ledger's, written as superuser.
            raise AccessError(
                self.env._(
                    "You are not allowed to change a wallet, except the "
                    "sponsor's choices on renewals: its credit changes through "
                    "transactions, its sponsor and company never."
                )
            )
        if {"partner_id", "company_id"} & set(vals):
            self.check_access("write")
            raise UserError(
                self.env._(
                    "A wallet's sponsor and company never change: its ledger "
                    "belongs to them. Adjust the wallets instead."
                )
            )
        return super().write(vals)

    @api.depends("partner_id", "company_id")
    def _compute_display_name(self):
        multi_company = len(self.company_id) > 1
        for wallet in self:
            wallet.display_name = (
                f"{wallet.partner_id.display_name} ({wallet.company_id.name})"
                if multi_company
                else wallet.partner_id.display_name
            )

    def action_view_transactions(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_wallet_transaction"
        )
        action["domain"] = [("wallet_id", "=", self.id)]
        action["context"] = {"default_wallet_id": self.id}
        return action

    def action_print_statement(self):
        """Ask for the period, then print the statement."""
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_wallet_statement_wizard"
        )
        action["context"] = {
            "active_model": self._name,
            "active_ids": self.ids,
        }
        return action

    @api.model
    def _get_or_create(self, partners, company):
        """The wallets of the commercial entities of ``partners`` in
        ``company``, created when missing (as superuser: a wallet is opened
        by the reward flow, whoever triggers it)."""
        commercial = partners.commercial_partner_id
        Wallet = self.sudo()
        wallets = Wallet.search(
            [("partner_id", "in", commercial.ids), ("company_id", "=", company.id)]
        )
        missing = commercial - wallets.partner_id
        if missing:
            wallets |= Wallet.create(
                [{"partner_id": p.id, "company_id": company.id} for p in missing]
            )
        return wallets.with_env(self.env)

    def _lock(self, mark=True, nowait=False):
        """Lock the wallet rows until the end of the transaction, in
        ascending id order whatever the order of ``self``: two redemptions at
        the same instant are serialised here, and two transactions locking
        several wallets never deadlock. A ``NO KEY UPDATE`` lock: rows
        referencing a wallet (a quotation's credit line) are still written
        meanwhile (see ``_lock_referenced``).

        ``mark``: update the rows as well (``_mark_changed``), for a
        transaction that lowers a balance. Without it (a reward that only
        adds credit, see ``referral.ledger._sync_rewards``), a transaction
        waiting for the rows goes on once this one commits: it reads the
        balance of its snapshot, lower than the new one, never higher.
        ``nowait``: refuse at once (``LockNotAvailable``) when another
        transaction holds a row, instead of waiting for it."""
        if not self:
            return
        # The expected refusal (below) is not an error of the server: no
        # ERROR line in its log; the caller retries.
        self.env.cr.execute(
            SQL(
                "SELECT id FROM referral_wallet WHERE id IN %s "
                "ORDER BY id FOR NO KEY UPDATE%s",
                tuple(self.ids),
                SQL(" NOWAIT") if nowait else SQL(),
            ),
            log_exceptions=False,
        )
        if mark:
            self._mark_changed()

    def _mark_changed(self):
        """Update the (locked) wallet rows. Odoo's transactions are
        REPEATABLE READ: a concurrent one that waited on the lock would read
        the balance of its older snapshot. Updated rows make it fail with a
        serialization error instead: Odoo retries a request, which then
        reads the new balance; the addon's cron jobs leave the clashing part
        for their next call (models/cron_batches.py)."""
        if not self:
            return
        self.env.cr.execute(
            SQL(
                "UPDATE referral_wallet SET write_date = %s, write_uid = %s "
                "WHERE id IN %s",
                fields.Datetime.now(),
                self.env.uid,
                tuple(self.ids),
            ),
            log_exceptions=False,
        )
        self.invalidate_recordset(["write_date", "write_uid"])

    def _lock_referenced(self):
        """Take the lock that a row referencing these wallets takes (its
        foreign key check), before writing it: when a concurrent transaction
        updated a wallet since this one started, it is refused here, quietly
        (no ERROR line in the server's log; Odoo retries the request), not in
        the INSERT."""
        if not self:
            return
        self.env.cr.execute(
            SQL(
                "SELECT id FROM referral_wallet WHERE id IN %s "
                "ORDER BY id FOR KEY SHARE",
                tuple(self.ids),
            ),
            log_exceptions=False,
        )

    def _read_posted_balances(self):
        """Balances read from the database, not the cache (call after
        ``_lock`` so no concurrent transaction changes them)."""
        self.env["referral.wallet.transaction"].flush_model()
        self.env.cr.execute(
            SQL(
                """SELECT wallet_id, COALESCE(SUM(signed_amount), 0)
                     FROM referral_wallet_transaction
                    WHERE wallet_id IN %s AND state = 'posted'
                 GROUP BY wallet_id""",
                tuple(self.ids) or (0,),
            )
        )
        balances = dict(self.env.cr.fetchall())
        return {wallet.id: balances.get(wallet.id, 0.0) for wallet in self}

    def _credit(self, amount, transaction_type="credit", posted=True, **values):
        """Add ``amount`` of credit (``credit`` or ``adjustment``); returns
        the transaction."""
        self.ensure_one()
        return (
            self.env["referral.wallet.transaction"]
            .sudo()
            .create(
                {
                    "wallet_id": self.id,
                    "transaction_type": transaction_type,
                    "amount": amount,
                    "remaining_amount": amount,
                    "state": "posted" if posted else "pending",
                    **values,
                }
            )
        )

    def _debit(self, amount, transaction_type="debit", **values):
        """Spend ``amount`` of credit outside any document (a manual
        adjustment), after locking the wallet and checking its balance;
        returns the posted transaction. Documents spend through
        ``referral.ledger``."""
        self.ensure_one()
        self._lock()
        self._expire_overdue_credits()
        balance = self._read_posted_balances()[self.id]
        if self.currency_id.round(amount - balance) > self.currency_id.rounding:
            raise UserError(
                self.env._(
                    "%(sponsor)s has %(balance)s of referral credit, less than the "
                    "%(amount)s to spend. Lower the credit applied.",
                    sponsor=self.partner_id.display_name,
                    balance=self._format_amount(balance),
                    amount=self._format_amount(amount),
                )
            )
        return self._spend(amount, transaction_type=transaction_type, **values)

    def _spend(
        self, amount, transaction_type="debit", holder=None, prefer=None, **values
    ):
        """Post a debit of ``amount``, consuming the ``prefer`` credits first
        then the oldest expiry first, on behalf of ``holder`` (see
        ``_allocate``; default: the debit itself).
        The caller locked the wallet and checked its balance; a debit one
        rounding step over the balance (converted back from another
        currency) spends the balance."""
        self.ensure_one()
        currency = self.currency_id
        balance = self._read_posted_balances()[self.id]
        if 0 < currency.round(amount - balance) <= currency.rounding:
            amount = balance
        amount = currency.round(amount)
        if currency.compare_amounts(amount, 0) <= 0:
            return self.env["referral.wallet.transaction"]
        consumed = self._consume(amount, prefer=prefer)
        debit = (
            self.env["referral.wallet.transaction"]
            .sudo()
            .create(
                {
                    "wallet_id": self.id,
                    "transaction_type": transaction_type,
                    "direction": "out",
                    "amount": amount,
                    "expiry_date": self._latest_expiry(consumed),
                    **values,
                }
            )
        )
        self._allocate(consumed, debit, holder or debit)
        return debit

    def _give_back(self, amount, holder=None, **values):
        """Post a reversal adding ``amount`` back to the wallet: the credits
        ``holder`` consumed are restored, oldest expiry first, each with its
        own expiry date (so credit never gains a longer life by being spent
        and given back). What no record of consumption covers (spendings
        older than these records) becomes spendable on the reversal itself,
        until the expiry of the debit it gives back. Returns the reversal."""
        self.ensure_one()
        Transaction = self.env["referral.wallet.transaction"].sudo()
        amount = self.currency_id.round(amount)
        restored = self._held_by(holder) if holder else []
        left, restoring = amount, []
        for credit, held in restored:
            if self.currency_id.is_zero(left):
                break
            room = credit.amount - credit.remaining_amount
            used = self.currency_id.round(min(held, left, room))
            if self.currency_id.compare_amounts(used, 0) > 0:
                restoring.append((credit, used))
                left = self.currency_id.round(left - used)
        origin_debit = self._last_debit_of(holder)
        reversal = Transaction.create(
            {
                "wallet_id": self.id,
                "transaction_type": "reversal",
                "direction": "in",
                "amount": amount,
                "remaining_amount": max(left, 0.0),
                "reversed_transaction_id": origin_debit.id,
                "expiry_date": (
                    self._latest_expiry(restoring)
                    if not left
                    else origin_debit.expiry_date
                ),
                **values,
            }
        )
        for credit, used in restoring:
            credit.remaining_amount = self.currency_id.round(
                credit.remaining_amount + used
            )
        self._allocate(
            [(credit, -used) for credit, used in restoring], reversal, holder
        )
        return reversal

    def _consume(self, amount, prefer=None, chunk=20):
        """Lower the remaining amount of the posted credits by ``amount``:
        the ``prefer`` credits first, then the oldest expiry first; returns
        [(credit, amount used)]. Credits are read ``chunk`` at a time: a
        spending touches a few of them, whatever the size of the ledger."""
        self.ensure_one()
        Transaction = self.env["referral.wallet.transaction"].sudo()
        consumed = []
        touched = Transaction.browse()
        currency = self.currency_id
        batches = [prefer.sorted(self._inflow_sort_key)] if prefer else []
        while not currency.is_zero(amount):
            if batches:
                inflows = batches.pop()
            else:
                inflows = Transaction.search(
                    [
                        ("wallet_id", "=", self.id),
                        ("state", "=", "posted"),
                        ("remaining_amount", ">", 0),
                        ("id", "not in", touched.ids),
                    ],
                    order="expiry_date ASC NULLS LAST, date, id",
                    limit=chunk,
                )
                if not inflows:
                    break
            for credit in inflows - touched:
                if currency.is_zero(amount):
                    break
                touched |= credit
                used = min(credit.remaining_amount, amount)
                if currency.compare_amounts(used, 0) <= 0:
                    continue
                credit.remaining_amount = currency.round(credit.remaining_amount - used)
                amount = currency.round(amount - used)
                consumed.append((credit, used))
        return consumed

    @api.model
    def _inflow_sort_key(self, credit):
        """Oldest expiry first (no expiry last), then the oldest credit."""
        return (
            not credit.expiry_date,
            credit.expiry_date or fields.Date.today(),
            credit.date,
            credit.id,
        )

    @api.model
    def _latest_expiry(self, consumed):
        """Latest expiry of the credits consumed (False if one never
        expires)."""
        expiries = [credit.expiry_date for credit, _amount in consumed]
        return max(expiries) if expiries and all(expiries) else False

    # ------------------------------------------------------------------
    # Who holds which credit
    # ------------------------------------------------------------------

    @api.model
    def _holder_values(self, holder):
        """Allocation fields naming ``holder``: a sales order line, an
        invoice (its credit notes move its holding too) or a transaction."""
        if holder._name == "sale.order.line":
            return {"sale_order_line_id": holder.id}
        if holder._name == "account.move":
            return {"move_id": holder.id}
        return {"holder_transaction_id": holder.id}

    def _allocate(self, moves, transaction, holder):
        """Record [(credit, amount)] consumed (positive) or restored
        (negative) by ``transaction`` on behalf of ``holder``."""
        self.ensure_one()
        if not moves:
            return
        self.env["referral.wallet.allocation"].sudo().create(
            [
                {
                    "wallet_id": self.id,
                    "credit_id": credit.id,
                    "transaction_id": transaction.id,
                    "amount": amount,
                    **self._holder_values(holder),
                }
                for credit, amount in moves
                if not self.currency_id.is_zero(amount)
            ]
        )

    def _held_by(self, holder):
        """[(credit, amount)] that ``holder`` holds of this wallet's credits,
        oldest expiry first."""
        self.ensure_one()
        Allocation = self.env["referral.wallet.allocation"].sudo()
        domain = [("wallet_id", "=", self.id)] + [
            (fname, "=", value) for fname, value in self._holder_values(holder).items()
        ]
        held = [
            (credit, amount)
            for credit, amount in Allocation._read_group(
                domain, ["credit_id"], ["amount:sum"]
            )
            if self.currency_id.compare_amounts(amount, 0) > 0
        ]
        return sorted(held, key=lambda pair: self._inflow_sort_key(pair[0]))

    def _last_debit_of(self, holder):
        """The latest spending of ``holder`` in this wallet (empty if
        none): the debit a reversal gives back."""
        Transaction = self.env["referral.wallet.transaction"].sudo()
        if not holder:
            return Transaction
        if holder._name == "referral.wallet.transaction":
            return holder
        last = (
            self.env["referral.wallet.allocation"]
            .sudo()
            .search(
                [
                    ("wallet_id", "=", self.id),
                    ("amount", ">", 0),
                    *[
                        (fname, "=", value)
                        for fname, value in self._holder_values(holder).items()
                    ],
                ],
                order="id desc",
                limit=1,
            )
            .transaction_id
        )
        if last:
            return last
        link = (
            ("sale_order_line_id", "=", holder.id)
            if holder._name == "sale.order.line"
            else ("invoice_id", "=", holder.id)
        )
        return Transaction.search(
            [
                ("wallet_id", "=", self.id),
                link,
                ("transaction_type", "=", "debit"),
                ("state", "=", "posted"),
            ],
            order="id desc",
            limit=1,
        )

    def _expire_overdue_credits(self):
        """Remove the unused part of the credit of these (locked) wallets
        past its expiry date, so that it is never spent, whether or not the
        daily job ran; returns the expiry transactions."""
        if not self:
            return self.env["referral.wallet.transaction"]
        Transaction = self.env["referral.wallet.transaction"].sudo()
        Transaction.flush_model(["remaining_amount", "expiry_date"])
        overdue = Transaction.search(Transaction._overdue_domain(self))
        return overdue._expire()

    def _format_amount(self, amount):
        self.ensure_one()
        return format_amount(self.env, amount, self.currency_id)

    # ------------------------------------------------------------------
    # Statement and manual adjustment
    # ------------------------------------------------------------------

    def action_send_statement(self):
        """Open the mail composer with the credit statement attached."""
        self.ensure_one()
        template = self.env.ref(
            "sale_referral_lifecycle.mail_template_referral_statement",
            raise_if_not_found=False,
        )
        return {
            "type": "ir.actions.act_window",
            "res_model": "mail.compose.message",
            "view_mode": "form",
            "views": [(False, "form")],
            "target": "new",
            "context": {
                "default_model": self._name,
                "default_res_ids": self.ids,
                "default_template_id": template.id if template else False,
                "default_composition_mode": "comment",
                "default_email_layout_xmlid": (
                    "mail.mail_notification_layout_with_responsible_signature"
                ),
                "force_email": True,
            },
        }

    def action_open_adjustment_wizard(self):
        """Open the manual adjustment of this wallet (reward approvers)."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_wallet_adjust_wizard"
        )
        action["context"] = {"default_wallet_id": self.id}
        return action

    # ------------------------------------------------------------------
    # Portal
    # ------------------------------------------------------------------

    # What the sponsor's portal shows of its wallet.

    def _portal_wallet_values(self, page, step):
        """Balance, pending rewards, a page of posted movements and the
        credit expiring soon, for the portal page (an empty wallet shows
        nothing)."""
        Transaction = self.env["referral.wallet.transaction"].sudo()
        domain = [("wallet_id", "in", self.ids), ("state", "=", "posted")]
        today = fields.Date.context_today(self)
        page = max(int(page or 1), 1)
        return {
            "movement_count": Transaction.search_count(domain),
            "movements": Transaction.search(
                domain,
                order="date desc, id desc",
                limit=step,
                offset=(page - 1) * step,
            ),
            "pending": Transaction.search(
                [("wallet_id", "in", self.ids), ("state", "=", "pending")],
                order="date desc, id desc",
            ),
            "expiring": Transaction.search(
                domain
                + [
                    ("transaction_type", "=", "credit"),
                    ("remaining_amount", ">", 0),
                    ("expiry_date", "!=", False),
                    ("expiry_date", ">=", today),
                    (
                        "expiry_date",
                        "<=",
                        today + relativedelta(days=EXPIRY_WARNING_DAYS),
                    ),
                ],
                order="expiry_date",
            ),
            "expiry_days": EXPIRY_WARNING_DAYS,
            "statement_date_from": today - relativedelta(months=12, days=-1),
            "statement_date_to": today,
        }

    def _portal_renewal_max_amount_text(self):
        """The sponsor's limit per renewal as the portal form shows it
        (empty: no limit)."""
        self.ensure_one()
        if not self.renewal_max_amount:
            return ""
        return "%.*f" % (self.currency_id.decimal_places, self.renewal_max_amount)

    def _portal_set_renewal_preferences(self, auto_apply, max_amount):
        """The sponsor's choice sent from /my/wallet: ``auto_apply`` (the
        checkbox: "on" or "1" when ticked, empty or missing otherwise) and
        ``max_amount`` (text: empty for no limit, else an amount such as
        150 or 150.50). Raises ``UserError`` (nothing written) when the
        input cannot be read."""
        self.ensure_one()
        if auto_apply not in (None, "", "on", "1"):
            raise UserError(self.env._("Tick the box or leave it empty."))
        text = (max_amount or "").strip().replace(",", ".")
        digits = self.currency_id.decimal_places
        if text and not re.fullmatch(
            r"\d{1,13}(\.\d{0,%d})?" % digits, text, flags=re.ASCII
        ):
            raise UserError(
                self.env._(
                    "Enter the most credit per renewal as an amount, such as 150 "
                    "or 150.50, or leave it empty for no limit."
                )
            )
        amount = float(text) if text else 0.0
        if amount > MAX_RENEWAL_AMOUNT:
            raise UserError(
                self.env._(
                    "Enter at most %(maximum)s per renewal, or leave it empty for "
                    "no limit.",
                    maximum=self._format_amount(MAX_RENEWAL_AMOUNT),
                )
            )
        self.write(
            {
                "renewal_auto_apply": auto_apply in ("on", "1"),
                "renewal_max_amount": self.currency_id.round(amount),
            }
        )

    @api.model
    def _portal_statement_period(self, date_from, date_to):
        """The period of a statement asked from the portal (dates as
        strings, by default the last twelve months): ``(date_from, date_to,
        None)``, or ``(None, None, error)`` where ``error`` is ``"dates"``
        (a date that cannot be read) or ``"period"`` (it ends before it
        starts)."""
        try:
            date_from = fields.Date.to_date(date_from or None)
            date_to = fields.Date.to_date(date_to or None)
        except ValueError:
            return None, None, "dates"
        date_to = date_to or fields.Date.context_today(self)
        date_from = date_from or date_to - relativedelta(months=12, days=-1)
        if date_from > date_to:
            return None, None, "period"
        return date_from, date_to, None

    def _portal_render_statement(self, date_from, date_to):
        """The statement of this wallet for the period: ``(content,
        "pdf")``, or ``(html, "html")`` when the server has no working PDF
        engine (wkhtmltopdf): the statement as a web page."""
        self.ensure_one()
        data = {
            "date_from": fields.Date.to_string(date_from),
            "date_to": fields.Date.to_string(date_to),
        }
        report = self.env["ir.actions.report"].sudo().with_company(self.company_id)
        if report.get_wkhtmltopdf_state() in PDF_ENGINE_STATES:
            content, report_type = report._render_qweb_pdf(
                STATEMENT_REPORT, self.ids, data=data
            )
        else:
            content, report_type = report._render_qweb_html(
                STATEMENT_REPORT, self.ids, data=data
            )
        # Under tests, Odoo renders PDF reports as HTML too: said by the type.
        if report_type == "pdf":
            return content, "pdf"
        return (content.decode() if isinstance(content, bytes) else content), "html"
