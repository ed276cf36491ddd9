# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from collections import defaultdict

from odoo import api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.osv import expression
from odoo.tools import email_normalize


class RetryRowByRow(Exception):
    """A batch of imported referrals was refused. ``load`` reports a refused
    batch's error on the batch's first row, then retries the rows one by one
    anyway: an exception that is no ``UserError`` skips that misplaced
    message and leaves each refused row to name itself."""


class ReferralReferral(models.Model):
    """Import of referrals with Odoo's import (base_import): the sponsor named
    by its name, email or referral code in ``sponsor_ref``, each refused row
    named in its error. The rows go through the referral's normal create:
    referee matching, rules, fraud checks and routing apply as by hand."""

    # One concern per file (see the docstring); merged by the ORM.
    _inherit = "referral.referral"  # pylint: disable=consider-merging-classes-inherited

    sponsor_ref = fields.Char(
        string="Sponsor Reference",
        compute="_compute_sponsor_ref",
        inverse="_inverse_sponsor_ref",
        help="The sponsor's referral code, email or name: how an imported "
        "file names the sponsor.",
    )

    @api.depends("sponsor_id.referral_code")
    def _compute_sponsor_ref(self):
        # The code: unique, so an exported file imports back.
        for referral in self:
            referral.sponsor_ref = referral.sponsor_id.referral_code

    def _inverse_sponsor_ref(self):
        sponsors = self._resolve_sponsor_refs(self.mapped("sponsor_ref"))
        for referral in self.filtered("sponsor_ref"):
            sponsor = sponsors[referral.sponsor_ref.strip()]
            if referral.sponsor_id != sponsor:
                referral.sponsor_id = sponsor

    @api.model_create_multi
    def create(self, vals_list):
        vals_list = [dict(vals) for vals in vals_list]
        sponsors = self._resolve_sponsor_refs(
            [vals.get("sponsor_ref") for vals in vals_list]
        )
        for vals in vals_list:
            ref = (vals.pop("sponsor_ref", None) or "").strip()
            if ref:
                vals["sponsor_id"] = sponsors[ref].id
            elif not vals.get("sponsor_id") and self.env.context.get("import_file"):
                raise ValidationError(
                    self.env._(
                        "The sponsor is missing: give its referral code, email "
                        "or name in the column Sponsor Reference."
                    )
                )
        return super().create(vals_list)

    @api.model
    def _load_records(self, data_list, update=False, ignore_duplicates=False):
        """Import: a refused row's error names the row (counted from 1 after
        the header, as base_import counts the lines of its own errors)."""
        if not self.env.context.get("import_file"):
            return super()._load_records(data_list, update, ignore_duplicates)
        try:
            return super()._load_records(data_list, update, ignore_duplicates)
        except UserError as error:
            if len(data_list) > 1:
                raise RetryRowByRow() from error
            row = data_list[0].get("info", {}).get("rows", {}).get("from")
            if row is None:
                raise
            message = self.env._(
                "Row %(row)s: %(error)s", row=row + 1, error=error.args[0]
            )
            raise UserError(message) from error

    @api.model
    def _resolve_sponsor_refs(self, refs):
        """Return ``{reference: commercial entity}`` for the sponsor
        references ``refs``, each a referral code, an email or a name (tried
        in this order, three queries for all). Raise a ValidationError naming
        the first reference that matches no contact or several customers
        (commercial entities)."""
        refs = {ref.strip() for ref in refs if ref and ref.strip()}
        if not refs:
            return {}
        Partner = self.env["res.partner"]
        by_code = {
            partner.referral_code: partner.commercial_partner_id
            for partner in Partner.search_fetch(
                [("referral_code", "in", [ref.upper() for ref in refs])],
                ["referral_code", "commercial_partner_id"],
            )
        }
        found = {ref: by_code[ref.upper()] for ref in refs if ref.upper() in by_code}
        emails = {
            ref: email_normalize(ref)
            for ref in refs - set(found)
            if "@" in ref and email_normalize(ref)
        }
        names = {ref: ref.lower() for ref in refs - set(found) - set(emails)}
        matches = defaultdict(Partner.browse)
        if emails:
            partners = Partner.search_fetch(
                [("email_normalized", "in", list(set(emails.values())))],
                ["email_normalized", "commercial_partner_id"],
            )
            for partner in partners:
                matches[partner.email_normalized] |= partner.commercial_partner_id
        if names:
            partners = Partner.search_fetch(
                expression.OR([[("name", "=ilike", name)] for name in names.values()]),
                ["name", "commercial_partner_id"],
            )
            for partner in partners:
                matches[partner.name.lower()] |= partner.commercial_partner_id
        for ref in sorted(refs - set(found)):
            sponsors = matches[emails.get(ref) or names.get(ref)]
            if not sponsors:
                raise ValidationError(
                    self.env._(
                        'No contact matches the sponsor "%(sponsor)s": give the '
                        "referral code, email or name of an existing contact.",
                        sponsor=ref,
                    )
                )
            if len(sponsors) > 1:
                raise ValidationError(
                    self.env._(
                        'Several contacts match the sponsor "%(sponsor)s" '
                        "(%(contacts)s): give its referral code or email "
                        "instead.",
                        sponsor=ref,
                        contacts=", ".join(sponsors.mapped("display_name")),
                    )
                )
            found[ref] = sponsors
        return found
