# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from markupsafe import Markup

from odoo import api, fields, models
from odoo.tools import format_date

PREVIEW_LIMIT = 200


class PartnerFollowupPreview(models.TransientModel):
    """Who a rule would follow up today. Computed when the window opens and
    never saved: the preview creates nothing."""

    _name = "partner.followup.preview"
    _description = "Follow-up Rule Preview"

    rule_id = fields.Many2one("partner.followup.rule", required=True, readonly=True)
    due_count = fields.Integer(compute="_compute_preview", string="Due Steps")
    preview_html = fields.Html(compute="_compute_preview", sanitize=False)

    @api.depends("rule_id")
    def _compute_preview(self):
        for wizard in self:
            decisions = wizard.rule_id and wizard.rule_id._get_preview_decisions()
            wizard.due_count = len(decisions or [])
            wizard.preview_html = wizard._render_preview(decisions or [])

    def _describe(self, decision, outcomes):
        """Done; postponed to which day and why; skipped and why."""
        if decision.outcome == "postponed":
            return self.env._(
                "Postponed to %(date)s: %(reason)s",
                date=format_date(self.env, decision.scheduled_date),
                reason=decision.reason,
            )
        label = outcomes[decision.outcome]
        return f"{label}: {decision.reason}" if decision.reason else label

    def _render_preview(self, decisions):
        if not decisions:
            return Markup("<p>%s</p>") % self.env._("Nobody is due today.")
        outcomes = dict(
            self.env["partner.followup.log"]
            ._fields["outcome"]
            ._description_selection(self.env)
        )
        Partner = self.env["res.partner"].with_context(active_test=False)
        rows = Markup().join(
            Markup("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td></tr>")
            % (
                Partner.browse(d.due.partner_id).display_name,
                d.due.step.name,
                self.env[d.due.res_model]
                .with_context(active_test=False)
                .browse(d.due.res_id)
                .display_name,
                format_date(self.env, d.due.due_date),
                self._describe(d, outcomes),
            )
            for d in decisions[:PREVIEW_LIMIT]
        )
        more = (
            Markup("<p>%s</p>")
            % self.env._(
                "... and %(count)s more.", count=len(decisions) - PREVIEW_LIMIT
            )
            if len(decisions) > PREVIEW_LIMIT
            else Markup()
        )
        head = Markup(
            "<tr><th>%s</th><th>%s</th><th>%s</th><th>%s</th><th>%s</th></tr>"
        ) % (
            self.env._("Contact"),
            self.env._("Step"),
            self.env._("Document"),
            self.env._("Due"),
            self.env._("Would be"),
        )
        return (
            Markup(
                '<table class="table table-sm"><thead>%s</thead>'
                "<tbody>%s</tbody></table>"
            )
            % (head, rows)
            + more
        )
