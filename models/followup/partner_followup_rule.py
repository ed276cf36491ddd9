# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, fields, models
from odoo.tools.safe_eval import safe_eval

TRIGGERS = [
    ("quote_sent", "Quotation sent, no answer"),
    ("order_confirmed", "Order confirmed"),
    ("subscription_end", "Subscription end"),
    ("stage_entered", "Lifecycle stage entered"),
    ("referral_new", "New referral"),
    ("dormant", "Dormant contact"),
    ("campaign", "Campaign"),
    ("signal", "Signal"),
]
SIGNALS = [
    ("quote_viewed", "The customer viewed the quotation online"),
    ("referral_page", "The sponsor opened its referral page"),
    ("came_back", "Came back to My referrals or My wallet"),
    ("link_visit", "Somebody visited the sponsor's referral link"),
]
# The record a step of each trigger is scheduled on.
TRIGGER_MODELS = {
    "quote_sent": "sale.order",
    "order_confirmed": "sale.order",
    "subscription_end": "res.partner",
    "stage_entered": "res.partner",
    "referral_new": "referral.referral",
    "dormant": "res.partner",
    "campaign": "res.partner",
    # The quotation for the quotation viewed online: see ``_compute_res_model``.
    "signal": "res.partner",
}


class PartnerFollowupRule(models.Model):
    _name = "partner.followup.rule"
    _description = "Follow-up Rule"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(
        default=10,
        help="Priority: when several steps are due for one contact, the rule "
        "listed first fires, the others wait for the gap.",
    )
    kind = fields.Selection(
        [
            ("systematic", "Systematic"),
            ("event", "Event"),
            ("opportunistic", "Opportunistic"),
        ],
        required=True,
        default="systematic",
        help="Systematic: nurturing and renewals; Event: a fair, a launch, a "
        "campaign; Opportunistic: a weak signal.",
    )
    color = fields.Integer(compute="_compute_color")
    trigger = fields.Selection(TRIGGERS, required=True, default="quote_sent")
    signal_type = fields.Selection(
        SIGNALS,
        string="Signal",
        default="quote_viewed",
        help="Signal: what the customer did that calls for a follow-up, "
        "within the hour (steps of delay 0) or a few days later.",
    )
    signal_days = fields.Integer(
        string="Days Away",
        default=30,
        help="Came back: only after this many days without a visit of My "
        "referrals or My wallet.",
    )
    res_model = fields.Char(
        string="Applies To",
        compute="_compute_res_model",
        help="The record the activities are scheduled on.",
    )
    delay_type = fields.Selection(
        [("working", "Working days"), ("calendar", "Calendar days")],
        required=True,
        default="working",
        help="Working days follow the company's working schedule (public "
        "holidays skipped), in its time zone.",
    )
    first_order_only = fields.Boolean(
        default=True,
        help="Order confirmed: only the customer's first confirmed order.",
    )
    bypass_gap = fields.Boolean(
        string="Ignore the Gap",
        help="Event rules only: fire even when the contact had a follow-up "
        "within the company's minimum gap.",
    )
    restart_on_resend = fields.Boolean(
        string="Each Sending Starts Again",
        help="Quotation sent: a quotation sent again is chased again, counted "
        "from its last sending. Unchecked: counted from its first sending, "
        "chased once.",
    )
    stop_on_reply = fields.Boolean(
        string="Stop When the Contact Replies",
        default=True,
        help="Skip the steps once the customer answered: an email or a "
        "message (the portal's comments included) of any of its contacts or "
        "portal users, on the document or on the contact, after the moment "
        "the occurrence counts from (the quotation sent...).",
    )
    max_late_days = fields.Integer(
        string="Catch-up Window (days)",
        help="Steps due more than this many days ago are ignored (e.g. when "
        "the rule is created on old data). 0: no limit.",
    )
    partner_domain = fields.Char(
        string="Contact Filter",
        default="[]",
        help="Only contacts (commercial entities) matching this filter.",
    )
    company_id = fields.Many2one(
        "res.company", index=True, help="Empty: every company."
    )
    user_id = fields.Many2one(
        "res.users",
        string="Fixed Responsible",
        domain="[('share', '=', False)]",
        help="Who gets the activities, in this order: the plan's own "
        "responsible (a fixed user, the sponsor's salesperson), else the "
        "document's salesperson (quotation, order, referral), else the "
        "contact's salesperson, else this fixed responsible, else the sales "
        "team leader. Archived users, users without access to the company "
        "and OdooBot are skipped at each level.",
    )
    stage_ids = fields.Many2many(
        "partner.lifecycle.stage",
        string="Lifecycle Stages",
        help="Only contacts in these stages (Stage entered: the stages whose "
        "entry fires the rule). Empty: any stage.",
    )
    team_ids = fields.Many2many(
        "crm.team",
        string="Sales Teams",
        help="Only contacts whose salesperson is a member of these teams.",
    )
    salesperson_ids = fields.Many2many(
        "res.users",
        "partner_followup_rule_salesperson_rel",
        string="Salespeople",
        domain="[('share', '=', False)]",
        help="Only the contacts of these salespeople.",
    )
    step_ids = fields.One2many("partner.followup.step", "rule_id", copy=True)
    log_ids = fields.One2many("partner.followup.log", "rule_id")
    log_count = fields.Integer(compute="_compute_log_count")

    @api.depends("kind")
    def _compute_color(self):
        colors = {"systematic": 4, "event": 3, "opportunistic": 10}
        for rule in self:
            rule.color = colors.get(rule.kind, 0)

    @api.depends("trigger", "signal_type")
    def _compute_res_model(self):
        for rule in self:
            if rule.trigger == "signal" and rule.signal_type == "quote_viewed":
                rule.res_model = "sale.order"
            else:
                rule.res_model = TRIGGER_MODELS.get(rule.trigger)

    def _compute_log_count(self):
        counts = dict(
            self.env["partner.followup.log"]._read_group(
                [("rule_id", "in", self.ids)], ["rule_id"], ["__count"]
            )
        )
        for rule in self:
            rule.log_count = counts.get(rule, 0)

    @api.onchange("kind")
    def _onchange_kind(self):
        if self.kind != "event":
            self.bypass_gap = False

    def action_preview(self):
        """Who would be due today: a window listing the contacts and steps,
        computed on opening, nothing created."""
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": self.env._("Preview: %(rule)s", rule=self.name),
            "res_model": "partner.followup.preview",
            "view_mode": "form",
            "target": "new",
            "context": {"default_rule_id": self.id},
        }

    def action_view_logs(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "sale_referral_lifecycle.action_partner_followup_log"
        )
        action["domain"] = [("rule_id", "=", self.id)]
        action["context"] = {}
        return action

    def _get_steps(self):
        """Steps in their order."""
        return self.step_ids.sorted(lambda s: (s.sequence, s.id))

    def _applies_to_company(self, company):
        return not self.company_id or self.company_id == company

    def _followup_conditions_on_contact(self):
        """Whether the contact filter reads the contact's own stored columns
        only: a change of what it reads then writes the contact, and the
        cron's incremental pass sees it (else the rule is detected in full
        on each run)."""
        self.ensure_one()
        Partner = self.env["res.partner"]
        for leaf in safe_eval(self.partner_domain or "[]"):
            if not isinstance(leaf, list | tuple) or len(leaf) != 3:
                continue
            path = str(leaf[0])
            field = Partner._fields.get(path)
            if (
                "." in path
                or not field
                or not field.store
                or field.type
                in (
                    "one2many",
                    "many2many",
                )
            ):
                return False
        return True

    def _get_preview_decisions(self):
        """What the next run would decide for this rule today."""
        self.ensure_one()
        return self.env["partner.followup.engine"]._preview(self, self.env.companies)
