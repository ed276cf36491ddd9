# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from dateutil.relativedelta import relativedelta

from odoo import api, fields, models
from odoo.exceptions import ValidationError


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
    referral_count = fields.Integer(compute="_compute_referral_count")
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
        help="Service product of the lines that spend credit and of the "
        "welcome discount.",
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

    def action_view_referrals(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_referral_referral"
        )
        action["domain"] = [("program_id", "=", self.id)]
        action["context"] = {"default_program_id": self.id}
        return action

    @api.model
    def _get_company_program(self, company):
        """Return the program new referrals of ``company`` follow."""
        return self.search([("company_id", "=", company.id)], limit=1)

    def _is_sponsor_eligible(self, partner):
        """Return whether the commercial entity ``partner`` may sponsor."""
        self.ensure_one()
        if self.sponsor_policy == "any":
            return True
        if self.sponsor_policy == "stages":
            # The sponsor's stage in the program's company.
            return (
                partner.with_company(self.company_id).lifecycle_stage_id
                in self.sponsor_stage_ids
            )
        return bool(
            self.env["sale.order"]
            .sudo()
            .search_count(
                [
                    # The commercial entity's orders (one query, where
                    # child_of reads the contact tree first).
                    (
                        "partner_id.commercial_partner_id",
                        "in",
                        partner.commercial_partner_id.ids,
                    ),
                    ("company_id", "=", self.company_id.id),
                    ("state", "=", "sale"),
                ],
                limit=1,
            )
        )

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
            # sudo: whether a customer ordered, whoever its orders belong to.
            customers = {
                partner.commercial_partner_id
                for [partner] in self.env["sale.order"]
                .sudo()
                ._read_group(
                    [
                        ("partner_id", "child_of", candidates.ids),
                        ("company_id", "=", self.company_id.id),
                        ("state", "=", "sale"),
                    ],
                    ["partner_id"],
                )
            }
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

    def _get_credit_expiry_date(self, date):
        """Date the credit earned on ``date`` expires (False: never)."""
        self.ensure_one()
        if not self.credit_validity_months:
            return False
        return date + relativedelta(months=self.credit_validity_months)
