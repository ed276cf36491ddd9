# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import math
from collections import defaultdict

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools import format_date
from odoo.tools.translate import LazyTranslate

_lt = LazyTranslate(__name__)

# The dashboard reads the last twelve months (the current one included).
DASHBOARD_MONTHS = 12
# The sponsors the dashboard names.
DASHBOARD_TOP_SPONSORS = 3
# Accounting: the accounts a program books referral credit on, created in a
# company's chart when missing: (field, account type, English name, code
# used when the chart has no account of that type).
REFERRAL_ACCOUNTS = (
    (
        "credit_liability_account_id",
        "liability_current",
        _lt("Referral credit owed to customers"),
        "2890",
    ),
    ("reward_expense_account_id", "expense", _lt("Referral rewards"), "6290"),
    (
        "expired_credit_account_id",
        "income_other",
        _lt("Expired referral credit"),
        "7590",
    ),
)


class ReferralProgram(models.Model):
    _name = "referral.program"
    _inherit = ["mail.thread"]
    _description = "Referral Program"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    sequence = fields.Integer(
        default=10,
        help="When a company has several active programs, new referrals use "
        "the first one.",
    )
    sponsor_policy = fields.Selection(
        [
            ("customer", "Customers only"),
            ("stages", "Contacts in given lifecycle stages"),
            ("any", "Any contact"),
        ],
        string="Who May Sponsor",
        default="customer",
        required=True,
        tracking=True,
        help="Customers only: the sponsor needs at least one confirmed sales "
        "order in the company. Lifecycle stages: the sponsor's stage must be "
        "one of the stages set. Any contact: every active contact may refer.",
    )
    sponsor_stage_ids = fields.Many2many(
        "partner.lifecycle.stage",
        string="Sponsor Stages",
        help="Lifecycle stages whose contacts may sponsor.",
    )
    allow_customer_referee = fields.Boolean(
        string="Accept Existing Customers as Referees",
        tracking=True,
        help="By default a company that already has a confirmed sales order "
        "cannot be referred: it is not new business.",
    )
    activity_plan_id = fields.Many2one(
        "mail.activity.plan",
        domain="[('res_model', '=', 'referral.referral'), "
        "'|', ('company_id', '=', False), ('company_id', '=', company_id)]",
        check_company=True,
        help="Activities scheduled on every new referral, due on the "
        "company's working days.",
    )
    reward_type = fields.Selection(
        [("percent", "Percentage of the first order"), ("fixed", "Fixed amount")],
        default="percent",
        required=True,
        tracking=True,
    )
    reward_percent = fields.Float(
        string="Reward (%)",
        default=10.0,
        tracking=True,
        help="Share of the untaxed amount of the referee's first order, in "
        "the company currency, credited to the sponsor.",
    )
    reward_fixed_amount = fields.Monetary(
        string="Fixed Reward", currency_field="currency_id", tracking=True
    )
    reward_max_amount = fields.Monetary(
        string="Reward Cap",
        currency_field="currency_id",
        tracking=True,
        help="Highest credit one referral earns. 0 means no cap.",
    )
    reward_trigger = fields.Selection(
        [
            ("order_confirmed", "First order confirmed"),
            ("invoice_paid", "First order's invoice paid"),
        ],
        default="order_confirmed",
        required=True,
        tracking=True,
        help="When the sponsor earns its credit.",
    )
    approval_required = fields.Boolean(
        tracking=True,
        help="Rewards wait as pending until a reward approver posts them.",
    )
    credit_validity_months = fields.Integer(
        string="Credit Validity (months)",
        default=12,
        tracking=True,
        help="Unused credit expires this many months after it was earned. "
        "0 means it never expires.",
    )
    yearly_cap_amount = fields.Monetary(
        string="Yearly Cap per Sponsor",
        currency_field="currency_id",
        tracking=True,
        help="Most credit a sponsor earns per calendar year. 0 means no cap.",
    )
    referee_discount_percent = fields.Float(
        string="Welcome Discount (%)",
        tracking=True,
        help="Discount given once to a referred customer, on its first order "
        "(e.g. 8.33% for one month of an annual subscription).",
    )
    referee_discount_auto_apply = fields.Boolean(
        string="Apply Welcome Discount Automatically",
        tracking=True,
        help="Add the welcome discount to the first quotation of a referred "
        "customer when it is created.",
    )
    redeem_scope = fields.Selection(
        [("renewal", "Subscription renewals only"), ("any", "Any order")],
        string="Credit Spent On",
        default="renewal",
        required=True,
        tracking=True,
    )
    auto_apply_on_renewal = fields.Boolean(
        tracking=True,
        help="Apply the sponsor's available credit on its renewal quotations "
        "when they are created.",
    )
    credit_tax_mode = fields.Selection(
        [
            ("discount", "Discount split across the order's taxes"),
            ("payment", "Payment, without tax"),
        ],
        string="Credit Tax Treatment",
        default="discount",
        required=True,
        tracking=True,
        help="Discount: the credit lowers the taxable base, one line per tax "
        "(like loyalty discounts). Payment: one line without tax lowers the "
        "total (like an eWallet).",
    )
    target_referral_share = fields.Float(
        string="Target Referral Share (%)",
        default=25.0,
        tracking=True,
        help="Share of the company's new customers the program should bring "
        "(a healthy program brings 20-25%). Shown beside the measured share "
        "in Sales > Reporting > Referral Program.",
    )
    # Portal, public link and fraud review.
    portal_enabled = fields.Boolean(
        string="Portal Referrals",
        default=True,
        help="Customers see a Referrals entry in their portal, refer companies "
        "from it and share their public referral link.",
    )
    portal_consent_text = fields.Char(
        string="Consent Wording (Portal)",
        translate=True,
        default="I have my contact's agreement to be contacted",
        help="Checkbox the sponsor ticks before sending a referral from its "
        "portal: it vouches for its contact's agreement.",
    )
    link_consent_text = fields.Char(
        string="Consent Wording (Referral Link)",
        translate=True,
        default="I agree to be contacted about this recommendation",
        help="Checkbox the visitor of a sponsor's referral link ticks before "
        "sending its details: the visitor is the person to contact.",
    )
    portal_daily_limit = fields.Integer(
        string="Daily Limit per Sponsor and per IP",
        default=10,
        help="Most referrals sent from the portal or a referral link per day, "
        "per sponsor and per IP address. 0 means no limit.",
    )
    portal_log_retention_days = fields.Integer(
        string="Keep the Portal Log (Days)",
        default=30,
        help="Days the referrals sent from the portal and referral links stay "
        "in the log that counts the daily limits (senders' IP addresses as "
        "keyed hashes) and records the refused ones; older rows are deleted "
        "every night.",
    )
    fraud_burst_limit = fields.Integer(
        string="Referrals per Hour before Review",
        default=5,
        help="A referral beyond this number from one sponsor within an hour "
        "waits for a review. 0 disables the check.",
    )
    referral_count = fields.Integer(compute="_compute_referral_count")
    # Dashboard card: the KPIs of the last twelve months, read from the KPI
    # reports (one grouped query per report for all cards).
    kpi_new_customer_count = fields.Integer(
        string="New Customers (12 months)", compute="_compute_kpis"
    )
    kpi_referred_customer_count = fields.Integer(
        string="Referred Customers (12 months)", compute="_compute_kpis"
    )
    kpi_referral_share = fields.Float(
        string="Referral Share (12 months, %)",
        compute="_compute_kpis",
        help="Share of the new customers of the last twelve months that came "
        "through a referral.",
    )
    kpi_referred_conversion = fields.Float(
        string="Referred Prospects Converted (%)", compute="_compute_kpis"
    )
    kpi_other_conversion = fields.Float(
        string="Other Prospects Converted (%)", compute="_compute_kpis"
    )
    kpi_conversion_ratio = fields.Float(
        string="Conversion Ratio",
        compute="_compute_kpis",
        help="How many times better referred prospects convert than the "
        "others (0 when the others did not convert at all).",
    )
    kpi_days_to_first_order = fields.Float(
        string="Days to First Order",
        compute="_compute_kpis",
        help="Average number of days from the first contact to the first "
        "confirmed order of the new customers of the last twelve months.",
    )
    kpi_days_to_first_order_referred = fields.Float(
        string="Days to First Order (Referred)", compute="_compute_kpis"
    )
    kpi_days_to_first_order_other = fields.Float(
        string="Days to First Order (Other Channels)", compute="_compute_kpis"
    )
    kpi_share_months = fields.Json(
        string="Referral Share by Month",
        compute="_compute_kpis",
        help="The referral share of each of the last twelve months, drawn "
        "against the target on the dashboard.",
    )
    kpi_top_sponsors = fields.Json(
        string="Top Sponsors (12 months)",
        compute="_compute_kpis",
        help="The sponsors that brought the most new customers in the last "
        "twelve months.",
    )
    kpi_credit_outstanding = fields.Monetary(
        string="Credit Outstanding",
        compute="_compute_kpis",
        currency_field="currency_id",
        help="Credit the company still owes its sponsors, all dates included.",
    )
    currency_id = fields.Many2one(related="company_id.currency_id")
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    credit_product_id = fields.Many2one(
        "product.product",
        string="Credit Product",
        default=lambda self: self.env.ref(
            "sale_referral_lifecycle.product_referral_credit",
            raise_if_not_found=False,
        ),
        domain="[('type', '=', 'service')]",
        check_company=True,
        ondelete="restrict",
        help="Service product of the lines that spend a sponsor's credit.",
    )

    welcome_discount_product_id = fields.Many2one(
        "product.product",
        string="Welcome Discount Product",
        default=lambda self: self.env.ref(
            "sale_referral_lifecycle.product_referral_welcome_discount",
            raise_if_not_found=False,
        ),
        domain="[('type', '=', 'service')]",
        check_company=True,
        ondelete="restrict",
        help="Service product of the welcome discount lines: kept apart from "
        "the credit product, so that reports tell discounts from credit spent.",
    )

    @api.depends("company_id")
    def _compute_referral_count(self):
        counts = dict(
            self.env["referral.referral"]._read_group(
                [("program_id", "in", self.ids)], ["program_id"], ["__count"]
            )
        )
        for program in self:
            program.referral_count = counts.get(program, 0)

    @api.depends("company_id", "target_referral_share")
    @api.depends_context("lang")
    def _compute_kpis(self):
        companies = self.company_id
        since = self._get_kpi_period_start()
        period = [("company_id", "in", companies.ids), ("date", ">=", since)]
        Kpi = self.env["referral.program.kpi"]
        customers = defaultdict(dict)
        for company, referred, count, days in Kpi._read_group(
            period,
            ["company_id", "is_referred"],
            ["customer_count:sum", "days_to_first_order:avg"],
        ):
            customers[company][referred] = (count, days or 0.0)
        months = defaultdict(dict)
        for company, month, count, referred in Kpi._read_group(
            period,
            ["company_id", "date:month"],
            ["customer_count:sum", "referred_count:sum"],
        ):
            months[company][month] = (count, referred)
        sponsors = defaultdict(list)
        for company, sponsor, referred in Kpi._read_group(
            period + [("is_referred", "=", True)],
            ["company_id", "sponsor_id"],
            ["referred_count:sum"],
            order="referred_count:sum desc, sponsor_id",
        ):
            sponsors[company].append((sponsor, referred))
        conversion = {
            (company, referred): rate
            for company, referred, rate in self.env[
                "referral.prospect.kpi"
            ]._read_group(
                period, ["company_id", "is_referred"], ["conversion_rate:avg"]
            )
        }
        outstanding = dict(
            self.env["referral.credit.report"]._read_group(
                [("company_id", "in", companies.ids)],
                ["company_id"],
                ["outstanding_amount:sum"],
            )
        )
        for program in self:
            company = program.company_id
            referred_count, referred_days = customers[company].get(True, (0, 0.0))
            other_count, other_days = customers[company].get(False, (0, 0.0))
            count = referred_count + other_count
            referred_rate = conversion.get((company, True)) or 0.0
            other_rate = conversion.get((company, False)) or 0.0
            program.kpi_new_customer_count = count
            program.kpi_referred_customer_count = referred_count
            program.kpi_referral_share = (
                100.0 * referred_count / count if count else 0.0
            )
            program.kpi_referred_conversion = referred_rate
            program.kpi_other_conversion = other_rate
            program.kpi_conversion_ratio = (
                referred_rate / other_rate if other_rate else 0.0
            )
            program.kpi_days_to_first_order = (
                (referred_days * referred_count + other_days * other_count) / count
                if count
                else 0.0
            )
            program.kpi_days_to_first_order_referred = referred_days
            program.kpi_days_to_first_order_other = other_days
            program.kpi_credit_outstanding = outstanding.get(company, 0.0)
            program.kpi_share_months = program._prepare_kpi_share_months(
                since, months[company]
            )
            program.kpi_top_sponsors = [
                {"id": sponsor.id, "name": sponsor.display_name, "count": referred}
                for sponsor, referred in sponsors[company][:DASHBOARD_TOP_SPONSORS]
            ]

    @api.model
    def _get_kpi_period_start(self):
        """First day of the dashboard's period: the last twelve months, the
        current one included."""
        return fields.Date.context_today(self) - relativedelta(
            months=DASHBOARD_MONTHS - 1, day=1
        )

    def _prepare_kpi_share_months(self, since, figures):
        """The dashboard's bars: per month of the period, its label (in the
        user's language), its share, whether it reached the target, and the
        heights of the bar and of the target line (percent of the chart)."""
        self.ensure_one()
        target = self.target_referral_share
        shares = []
        for index in range(DASHBOARD_MONTHS):
            month = since + relativedelta(months=index)
            count, referred = figures.get(month, (0, 0))
            shares.append(
                (month, count, referred, 100.0 * referred / count if count else 0.0)
            )
        scale = max([target, *(share for *_rest, share in shares)]) or 100.0
        return {
            "target": target,
            "target_height": round(100.0 * target / scale, 1),
            "months": [
                {
                    "label": format_date(self.env, month, date_format="MMM"),
                    "title": self.env._(
                        "%(month)s: %(referred)s of %(count)s new customers "
                        "referred (%(share)s%%)",
                        month=format_date(self.env, month, date_format="MMMM y"),
                        referred=referred,
                        count=count,
                        share=round(share, 1),
                    ),
                    "share": round(share, 1),
                    "height": round(100.0 * share / scale, 1),
                    "reached": bool(count) and share >= target,
                    "empty": not count,
                }
                for month, count, referred, share in shares
            ],
        }

    @api.constrains(
        "reward_percent",
        "referee_discount_percent",
        "reward_fixed_amount",
        "reward_max_amount",
        "yearly_cap_amount",
        "credit_validity_months",
        "target_referral_share",
    )
    def _check_reward_values(self):
        for program in self:
            for percent in (
                program.reward_percent,
                program.referee_discount_percent,
                program.target_referral_share,
            ):
                if not 0 <= percent <= 100:
                    raise ValidationError(
                        self.env._(
                            "Percentages of the program %(program)s must be "
                            "between 0 and 100.",
                            program=program.display_name,
                        )
                    )
            if (
                min(
                    program.reward_fixed_amount,
                    program.reward_max_amount,
                    program.yearly_cap_amount,
                    program.credit_validity_months,
                )
                < 0
            ):
                raise ValidationError(
                    self.env._(
                        "Amounts and validity of the program %(program)s cannot "
                        "be negative: use 0 for no cap or no expiry.",
                        program=program.display_name,
                    )
                )

    @api.constrains("portal_log_retention_days")
    def _check_portal_log_retention_days(self):
        if any(program.portal_log_retention_days < 1 for program in self):
            raise ValidationError(
                self.env._(
                    "Keep the portal log at least one day: the daily limits "
                    "count the referrals of the last 24 hours."
                )
            )

    # ------------------------------------------------------------------
    # Actions
    # ------------------------------------------------------------------

    def action_view_referrals(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        action["domain"] = [("program_id", "=", self.id)]
        action["context"] = {"default_program_id": self.id}
        return action

    def _action_open_kpi_report(self, xmlid, period=True, domain=()):
        """The report ``xmlid`` on this program's company (and ``domain``);
        ``period``: on the dashboard's twelve months, so that it shows the
        card's figures."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(xmlid)
        domain = [("company_id", "=", self.company_id.id), *domain]
        if period:
            domain.append(
                ("date", ">=", fields.Date.to_string(self._get_kpi_period_start()))
            )
        action["domain"] = domain
        return action

    def action_open_kpi_customers(self):
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_program_kpi"
        )

    def action_open_kpi_days(self):
        """Days to the first order, referred customers against the others."""
        action = self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_program_kpi"
        )
        action["context"] = {
            "pivot_measures": ["days_to_first_order", "customer_count"],
            "pivot_row_groupby": ["acquisition_channel"],
            "pivot_column_groupby": [],
        }
        action["views"] = sorted(action["views"], key=lambda view: view[1] != "pivot")
        return action

    def action_open_kpi_conversion(self):
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_prospect_kpi"
        )

    def action_open_kpi_sponsors(self):
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_program_kpi_sponsors",
            domain=[("is_referred", "=", True)],
        )

    def action_open_kpi_credit(self):
        # Outstanding credit counts every date: the report opens on all.
        return self._action_open_kpi_report(
            "sale_referral_lifecycle.action_referral_credit_report", period=False
        )

    # ------------------------------------------------------------------
    # Business methods
    # ------------------------------------------------------------------

    @api.model
    def _get_company_program(self, company):
        """Return the program new referrals of ``company`` follow, with the
        settings the checks of a new referral read (no second query)."""
        return self.search_fetch(
            [("company_id", "=", company.id)],
            [
                "company_id",
                "sponsor_policy",
                "allow_customer_referee",
                "reward_trigger",
            ],
            limit=1,
        )

    def _is_sponsor_eligible(self, partner):
        """Return whether the commercial entity ``partner`` may sponsor."""
        return bool(self._filter_eligible_sponsors(partner))

    def _filter_eligible_sponsors(self, partners, customers=None):
        """The commercial entities ``partners`` that may sponsor in this
        program, whatever their archiving (one query for all). ``customers``:
        ``res.partner._read_company_customers`` of the program's company
        over them, when the caller read it already."""
        self.ensure_one()
        if self.sponsor_policy == "any":
            return partners
        if self.sponsor_policy == "stages":
            # The sponsors' stage in the program's company.
            return partners.filtered(
                lambda p: p.with_company(self.company_id).lifecycle_stage_id
                in self.sponsor_stage_ids
            )
        if customers is not None:
            # Any confirmed order counts for a sponsor, excluded or not.
            customers, held = customers
            return partners & (customers | partners.browse([p.id for p in held]))
        return partners._get_company_customers(self.company_id)

    def _get_sponsor_refusals(self, partners):
        """``{commercial entity: why it may not sponsor in this program}``
        for those of ``partners`` that may not (one query for all)."""
        self.ensure_one()
        sponsors = partners.commercial_partner_id
        refusals = {
            sponsor: self.env._(
                "%(sponsor)s is archived and cannot sponsor.",
                sponsor=sponsor.display_name,
            )
            for sponsor in sponsors.filtered(lambda p: not p.active)
        }
        candidates = sponsors.filtered("active")
        if self.sponsor_policy == "stages":
            # The sponsors' stage in the program's company.
            for sponsor in candidates.with_company(self.company_id).filtered(
                lambda p: p.lifecycle_stage_id not in self.sponsor_stage_ids
            ):
                refusals[sponsor] = self.env._(
                    "%(sponsor)s may not sponsor yet: in the program "
                    "%(program)s, only contacts in the lifecycle stages "
                    "%(stages)s may.",
                    sponsor=sponsor.display_name,
                    program=self.display_name,
                    stages=", ".join(self.sponsor_stage_ids.mapped("display_name")),
                )
        elif self.sponsor_policy == "customer":
            customers = candidates._get_company_customers(self.company_id)
            for sponsor in candidates.filtered(lambda p: p not in customers):
                refusals[sponsor] = self.env._(
                    "%(sponsor)s may not sponsor yet: in the program "
                    "%(program)s, only customers with a confirmed sales order "
                    "may.",
                    sponsor=sponsor.display_name,
                    program=self.display_name,
                )
        return refusals

    def _compute_reward_amount(self, order, earned_this_year=0.0):
        """Credit the sponsor earns for ``order``, the referee's first order,
        in the company currency; ``earned_this_year`` is what the sponsor
        already earned in the calendar year (for the yearly cap)."""
        self.ensure_one()
        currency = self.currency_id
        if self.reward_type == "fixed":
            amount = self.reward_fixed_amount
        else:
            base = order.currency_id._convert(
                order.amount_untaxed,
                currency,
                self.company_id,
                order.date_order or fields.Date.context_today(self),
            )
            amount = base * self.reward_percent / 100
        if self.reward_max_amount:
            amount = min(amount, self.reward_max_amount)
        if self.yearly_cap_amount:
            amount = min(amount, max(self.yearly_cap_amount - earned_this_year, 0.0))
        return currency.round(max(amount, 0.0))

    def _get_welcome_discount_product(self):
        """The product of this program's welcome discount lines (the credit
        product for a program that has none)."""
        self.ensure_one()
        return self.welcome_discount_product_id or self.credit_product_id

    def _get_credit_expiry_date(self, date):
        """Date the credit earned on ``date`` expires (False: never)."""
        self.ensure_one()
        if not self.credit_validity_months:
            return False
        return date + relativedelta(months=self.credit_validity_months)

    # ------------------------------------------------------------------
    # Credit per renewal
    # ------------------------------------------------------------------

    # How much of a sponsor's credit one renewal takes (and, when the credit
    # is spent on any order, one order or invoice): the most the automatic
    # application spends and what the Apply Referral Credit wizards propose.

    renewal_credit_limit = fields.Selection(
        [
            ("all", "All available credit"),
            ("percent", "At most a percentage of the untaxed amount"),
            ("fixed", "At most a fixed amount"),
        ],
        string="Credit per Renewal",
        default="all",
        required=True,
        tracking=True,
        help="How much credit one renewal takes: all the credit available (up "
        "to the renewal's total), at most a percentage of the renewal's "
        "untaxed amount, or at most a fixed amount. The automatic application "
        "spends at most this; the Apply Referral Credit wizards propose it.",
    )
    renewal_credit_percent = fields.Float(
        string="Credit per Renewal (%)",
        tracking=True,
        help="Most credit one renewal takes, as a percentage of its untaxed "
        "amount (its lines other than the credit, welcome discount included).",
    )
    renewal_credit_max_amount = fields.Monetary(
        string="Credit per Renewal (amount)",
        currency_field="currency_id",
        tracking=True,
        help="Most credit one renewal takes, in the company currency "
        "(converted into the renewal's currency).",
    )

    @api.constrains(
        "renewal_credit_limit", "renewal_credit_percent", "renewal_credit_max_amount"
    )
    def _check_renewal_credit_limit(self):
        for program in self:
            percent = program.renewal_credit_percent
            amount = program.renewal_credit_max_amount
            if not (math.isfinite(percent) and math.isfinite(amount)):
                raise ValidationError(
                    self.env._(
                        "The credit per renewal of the program %(program)s must "
                        "be a number.",
                        program=program.display_name,
                    )
                )
            if program.renewal_credit_limit == "percent" and not 0 < percent <= 100:
                raise ValidationError(
                    self.env._(
                        "The credit per renewal of the program %(program)s is a "
                        "percentage of the renewal's untaxed amount: enter more "
                        "than 0 and at most 100.",
                        program=program.display_name,
                    )
                )
            if program.renewal_credit_limit == "fixed" and amount <= 0:
                raise ValidationError(
                    self.env._(
                        "The credit per renewal of the program %(program)s is a "
                        "fixed amount: enter an amount above zero, or choose all "
                        "available credit.",
                        program=program.display_name,
                    )
                )
            if percent < 0 or amount < 0:
                raise ValidationError(
                    self.env._(
                        "The credit per renewal of the program %(program)s cannot "
                        "be negative.",
                        program=program.display_name,
                    )
                )

    def _get_renewal_credit_cap(self, document):
        """Most credit ``document`` (an order or invoice of this program's
        company) may take under this program, in its currency; None when
        the program takes all the credit available."""
        self.ensure_one()
        if self.renewal_credit_limit == "percent":
            return document.currency_id.round(
                document._referral_credit_untaxed_base()
                * self.renewal_credit_percent
                / 100
            )
        if self.renewal_credit_limit == "fixed":
            return document.currency_id.round(
                document._referral_from_company_currency(self.renewal_credit_max_amount)
            )
        return None

    # ------------------------------------------------------------------
    # Accounting
    # ------------------------------------------------------------------

    accounting_enabled = fields.Boolean(
        string="Book Referral Credit",
        tracking=True,
        help="Post journal entries for the referral credit: rewards, expiry "
        "and adjustments by the ledger, credit spent through the credit "
        "lines of invoices. Turning it on books nothing of the past: use "
        "Book Opening Balances for the credit already owed.",
    )
    company_has_chart = fields.Boolean(compute="_compute_company_has_chart")
    credit_liability_account_id = fields.Many2one(
        "account.account",
        string="Credit Liability Account",
        check_company=True,
        tracking=True,
        ondelete="restrict",
        domain="[('account_type', '=', 'liability_current')]",
        help="Current liability holding the credit owed to sponsors; the "
        "credit lines of invoices and credit notes post to it.",
    )
    reward_expense_account_id = fields.Many2one(
        "account.account",
        string="Reward Expense Account",
        check_company=True,
        tracking=True,
        ondelete="restrict",
        domain="[('account_type', 'in', ('expense', 'expense_direct_cost'))]",
        help="Debited by the rewards granted (credited when revoked), and the "
        "default counterpart of manual adjustments.",
    )
    expired_credit_account_id = fields.Many2one(
        "account.account",
        string="Expired Credit Account",
        check_company=True,
        tracking=True,
        ondelete="restrict",
        domain="[('account_type', 'in', ('income', 'income_other'))]",
        help="Credited by the credit that expires unused.",
    )
    credit_journal_id = fields.Many2one(
        "account.journal",
        string="Referral Credit Journal",
        check_company=True,
        tracking=True,
        ondelete="restrict",
        domain="[('type', '=', 'general')]",
        help="Miscellaneous journal of the entries the ledger posts.",
    )

    @api.depends("company_id.chart_template")
    def _compute_company_has_chart(self):
        for program in self:
            program.company_has_chart = bool(program.company_id.chart_template)

    @api.constrains(
        "accounting_enabled",
        "credit_liability_account_id",
        "reward_expense_account_id",
        "expired_credit_account_id",
        "credit_journal_id",
    )
    def _check_accounting_settings(self):
        for program in self.filtered("accounting_enabled"):
            if not (
                program.credit_liability_account_id
                and program.reward_expense_account_id
                and program.expired_credit_account_id
                and program.credit_journal_id
            ):
                raise ValidationError(
                    self.env._(
                        "To book the referral credit of %(program)s, set its "
                        "credit liability, reward expense and expired credit "
                        "accounts and its journal.",
                        program=program.display_name,
                    )
                )

    @api.model_create_multi
    def create(self, vals_list):
        programs = super().create(vals_list)
        programs.filtered(
            lambda p: not p.accounting_enabled and p.company_id.chart_template
        )._setup_referral_accounting()
        return programs

    def _setup_referral_accounting(self):
        """Fill the accounting settings of the programs whose company has a
        chart of accounts (the accounts created there when missing, named
        in every installed language) and turn their accounting on. Nothing
        of the past is booked."""
        for program in self.sudo():
            company = program.company_id
            if not company.chart_template:
                continue
            values = {
                field: program._find_or_create_referral_account(
                    account_type, name, fallback_code
                ).id
                for field, account_type, name, fallback_code in REFERRAL_ACCOUNTS
                if not program[field]
            }
            if not program.credit_journal_id:
                values["credit_journal_id"] = program._find_referral_journal().id
            values["accounting_enabled"] = True
            program.write(values)
        return True

    def _find_or_create_referral_account(self, account_type, name, fallback_code):
        """The account named ``name`` (in English) of ``account_type`` in the
        program's company, created after the last code of that type."""
        self.ensure_one()
        company = self.company_id
        Account = self.env["account.account"].sudo().with_company(company)
        domain = [
            *Account._check_company_domain(company),
            ("account_type", "=", account_type),
        ]
        account = Account.with_context(lang="en_US").search(
            [*domain, ("name", "=", name._translate("en_US"))], limit=1
        )
        if account:
            return account
        last = Account.search(domain, order="code desc", limit=1)
        code = (
            Account._search_new_account_code(last.code)
            if last.code
            else Account._search_new_account_code(fallback_code, cache=set())
        )
        account = Account.with_context(lang="en_US").create(
            {
                "name": name._translate("en_US"),
                "code": code,
                "account_type": account_type,
                "company_ids": [(6, 0, company.root_id.ids)],
            }
        )
        translations = {
            lang: name._translate(lang)
            for lang, _label in self.env["res.lang"].get_installed()
        }
        account.update_field_translations("name", translations)
        return account

    def _find_referral_journal(self):
        """The company's miscellaneous journal (created when it has none)."""
        self.ensure_one()
        Journal = self.env["account.journal"].sudo()
        journal = Journal.search(
            [
                *Journal._check_company_domain(self.company_id),
                ("type", "=", "general"),
            ],
            order="sequence, id",
            limit=1,
        )
        return journal or Journal.create(
            {
                "name": self.env._("Miscellaneous Operations"),
                "code": "MISC",
                "type": "general",
                "company_id": self.company_id.id,
            }
        )

    def action_setup_accounting(self):
        """Program form: create or find the accounts and turn accounting on."""
        self.check_access("write")
        without_chart = self.filtered(lambda p: not p.company_id.chart_template)
        if without_chart:
            raise UserError(
                self.env._(
                    "%(company)s has no chart of accounts: install one "
                    "(Invoicing settings), then set up the referral accounts.",
                    company=without_chart.company_id[:1].name,
                )
            )
        return self._setup_referral_accounting()

    def action_book_opening_balances(self):
        """Post, per sponsor, one entry dated today bringing the liability
        account to the credit owed now (wallet balance and credit held by
        confirmed orders not invoiced yet): the start of the books for
        credit earned before accounting was turned on."""
        self.check_access("write")
        if not (self.env.su or self.env.user.has_group("account.group_account_user")):
            raise UserError(
                self.env._("Only accountants may book the opening balances.")
            )
        disabled = self.filtered(lambda p: not p.accounting_enabled)
        if disabled:
            raise UserError(
                self.env._(
                    "Turn on the accounting of %(program)s first.",
                    program=disabled[0].display_name,
                )
            )
        moves = self.env["referral.ledger"]._book_opening_balances(self)
        if not moves:
            return {
                "type": "ir.actions.client",
                "tag": "display_notification",
                "params": {
                    "type": "info",
                    "message": self.env._(
                        "The books already match the wallets: nothing to post."
                    ),
                },
            }
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Opening Balances"),
            "res_model": "account.move",
            "view_mode": "list,form",
            "domain": [("id", "in", moves.ids)],
        }

    @api.model
    def _get_books_program(self, company):
        """The program whose accounts book ``company``'s referral credit
        (empty when its accounting is off)."""
        program = self.sudo()._get_company_program(company)
        return program if program.accounting_enabled else program.browse()
