# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo import api, models
from odoo.osv import expression

REFERRAL_SOURCE = "sale_referral_lifecycle.utm_source_referral"
# The name the addon gives its source, shown translated while it is unchanged.
REFERRAL_SOURCE_NAME = "Referral"


class UtmSource(models.Model):
    """The addon's UTM source, shown in the user's language. Its stored name
    stays "Referral": a UTM source's name is an identifier (unique, written
    into tracked links as ``utm_source``, read by name by ``utm.mixin`` and
    grouped in SQL by mass mailing reports), so it is not translated; its
    display name and the search on it are."""

    _inherit = "utm.source"

    @api.depends_context("lang")
    def _compute_display_name(self):
        res = super()._compute_display_name()
        source = self._referral_source()
        if source in self and source.name == REFERRAL_SOURCE_NAME:
            source.display_name = self.env._("Referral")
        return res

    @api.model
    def _search_display_name(self, operator, value):
        domain = super()._search_display_name(operator, value)
        source = self._referral_source()
        if (
            source
            and isinstance(value, str)
            and operator in ("ilike", "=ilike", "=")
            and source.name == REFERRAL_SOURCE_NAME
            and source.filtered_domain([("display_name", operator, value)])
        ):
            domain = expression.OR([domain, [("id", "=", source.id)]])
        return domain

    @api.model
    def _referral_source(self):
        return self.env.ref(REFERRAL_SOURCE, raise_if_not_found=False) or self.browse()
