# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import functools
import logging

from werkzeug.exceptions import BadRequest, HTTPException, NotFound

from odoo import fields, http
from odoo.exceptions import AccessError, MissingError, UserError, ValidationError
from odoo.http import request
from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

from odoo.addons.portal.controllers.portal import CustomerPortal
from odoo.addons.portal.controllers.portal import pager as portal_pager

from ..models.referral.referral_referral import PORTAL_FORM_FIELDS
from ..models.referral.text_input import has_control_characters

_logger = logging.getLogger(__name__)

# Longest parameter a route reads (a form field is bounded by the model
# below that); longer is a bad request.
MAX_PARAM_LENGTH = 5000
# Parameters that may hold line breaks.
MULTILINE_PARAMS = frozenset({"message"})
# Largest page number and record id a URL may name (ids are 32-bit).
MAX_PAGE = 100_000
MAX_RECORD_ID = 2**31 - 1


def _parse_number(value, maximum):
    """``value`` (text of a URL, or already an integer) as a whole number
    from 1 to ``maximum``; None otherwise."""
    if isinstance(value, str):
        value = value.strip()
        if not value.isdecimal() or len(value) > len(str(maximum)):
            return None
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    return value if 1 <= value <= maximum else None


def checked_route(numbers=None, form=None):
    """The guard every route of ``ReferralPortal`` goes through (below its
    ``@http.route``), so that no input fails in the database:

    - ``numbers`` maps the route's numeric parameters to their largest
      value: anything else than a whole number from 1 to it is a 404;
    - every text parameter longer than ``MAX_PARAM_LENGTH`` or holding a NUL
      or another control character (line breaks in a multi-line field only)
      is a 400, before the route runs;
    - a ``UserError``/``ValidationError`` raised by the route rolls back what
      it wrote and is shown by the method named ``form`` (the route's form
      with the message), else on the generic error page; access and missing
      record errors are a 404;
    - anything else is logged with its traceback, rolled back and answered
      with the generic error page: the visitor never gets a server error
      (concurrency errors excepted: Odoo retries the request)."""
    numbers = numbers or {}

    def decorator(handler):
        @functools.wraps(handler)
        def guard(self, *args, **kw):
            for name, value in kw.items():
                if name in numbers:
                    continue
                if isinstance(value, str) and (
                    len(value) > MAX_PARAM_LENGTH
                    or has_control_characters(value, multiline=name in MULTILINE_PARAMS)
                ):
                    raise BadRequest()
            for name, maximum in numbers.items():
                if name in kw:
                    kw[name] = _parse_number(kw[name], maximum)
                    if kw[name] is None:
                        raise NotFound()
            try:
                return handler(self, *args, **kw)
            except HTTPException:
                raise
            except (AccessError, MissingError):
                request.env.cr.rollback()
                raise NotFound() from None
            except (UserError, ValidationError) as error:
                request.env.cr.rollback()
                message = error.args[0]
                if form:
                    return getattr(self, form)(message, *args, **kw)
                return self._referral_error_page(message)
            except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
                raise
            except Exception:
                _logger.exception(
                    "Referral portal: %s failed", request.httprequest.path
                )
                request.env.cr.rollback()
                return self._referral_error_page()

        guard.checked_route = True
        return guard

    return decorator


class ReferralPortal(CustomerPortal):
    """Portal pages of sponsors (their referrals and credit wallet) and the
    public referral link. Thin: access checks here, everything else in
    ``referral.referral`` and ``referral.wallet``."""

    # ------------------------------------------------------------------
    # Helpers
    # ------------------------------------------------------------------

    def _referral_sponsor(self):
        """The portal user's commercial entity: whose referrals and wallet
        the pages show."""
        return request.env.user.partner_id.commercial_partner_id

    def _referral_program(self):
        return request.env["referral.referral"]._portal_get_program(
            self._referral_sponsor().company_id or request.env.company
        )

    def _referral_domain(self):
        return [("sponsor_id", "=", self._referral_sponsor().id)]

    def _referral_wallet(self):
        """The wallet of the user's commercial entity in the current company
        (read as superuser, filtered on that entity)."""
        sponsor = self._referral_sponsor()
        return (
            request.env["referral.wallet"]
            .sudo()
            .search(
                [
                    ("partner_id", "=", sponsor.id),
                    ("company_id", "=", (sponsor.company_id or request.env.company).id),
                ],
                limit=1,
            )
        )

    @staticmethod
    def _referral_form_values(post):
        form = {name: (post.get(name) or "").strip() for name in PORTAL_FORM_FIELDS}
        form["consent"] = bool(post.get("consent"))
        return form

    def _referral_error_page(self, message=None):
        """The generic error page: ``message`` (a refusal in the user's
        words) or a plain "could not process" (an unexpected error, whose
        details stay in the server's log). Answered as a bad request: the
        request could not be served, and nothing of it was written."""
        return request.render(
            "sale_referral_lifecycle.referral_error_page",
            {"message": message},
            status=400,
        )

    def _prepare_home_portal_values(self, counters):
        """Counters of the home entries: 0 hides an entry (portal.js), so a
        program closed to the portal gives 0, and an open one always shows
        the Referrals entry (its count as text, "0" included)."""
        values = super()._prepare_home_portal_values(counters)
        if not {"referral_count", "referral_credit"} & set(counters):
            return values
        Referral = request.env["referral.referral"]
        enabled = bool(self._referral_program()) and Referral.has_access("read")
        if "referral_count" in counters:
            values["referral_count"] = (
                str(Referral.search_count(self._referral_domain())) if enabled else 0
            )
        if "referral_credit" in counters:
            wallet = self._referral_wallet() if enabled else None
            values["referral_credit"] = (
                wallet._format_amount(wallet.balance) if wallet else 0
            )
        return values

    # ------------------------------------------------------------------
    # /my/referrals
    # ------------------------------------------------------------------

    def _referral_sortings(self):
        return {
            "date": {
                "label": request.env._("Newest"),
                "order": "date_referral desc, id desc",
            },
            "name": {"label": request.env._("Reference"), "order": "name desc"},
            "state": {"label": request.env._("Status"), "order": "state, id desc"},
        }

    def _prepare_referrals_values(self, page=1, sortby=None, form=None, errors=None):
        Referral = request.env["referral.referral"]
        sortings = self._referral_sortings()
        sortby = sortby if sortby in sortings else "date"
        domain = self._referral_domain()
        pager = portal_pager(
            url="/my/referrals",
            url_args={"sortby": sortby},
            total=Referral.search_count(domain),
            page=page,
            step=self._items_per_page,
        )
        sponsor = self._referral_sponsor()
        values = self._prepare_portal_layout_values()
        values.update(
            {
                "page_name": "referrals",
                "referrals": Referral.search(
                    domain,
                    order=sortings[sortby]["order"],
                    limit=self._items_per_page,
                    offset=pager["offset"],
                ),
                "pager": pager,
                "sortby": sortby,
                "searchbar_sortings": sortings,
                "default_url": "/my/referrals",
                "program": self._referral_program(),
                # sudo: the code of the user's own commercial entity.
                "referral_code": sponsor.sudo().referral_code,
                "share_url": sponsor.sudo()._get_referral_share_url(),
                "form": form or {},
                "errors": errors or {},
            }
        )
        return values

    @http.route(
        ["/my/referrals", "/my/referrals/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
        methods=["GET", "POST"],
    )
    @checked_route(numbers={"page": MAX_PAGE}, form="_render_referrals_form_error")
    def portal_my_referrals(self, page=1, sortby=None, **post):
        if not self._referral_program():
            return request.redirect("/my")
        form, errors = {}, {}
        if request.httprequest.method == "POST":
            # CSRF: checked by the framework for every POST of type "http".
            form = self._referral_form_values(post)
            referral, errors = request.env["referral.referral"]._portal_create_referral(
                self._referral_sponsor(),
                form,
                "portal",
                request.httprequest.remote_addr,
            )
            if referral:
                return request.redirect(f"/my/referrals/{referral.id}?sent=1")
        else:
            self._record_followup_visit("referrals")
        values = self._prepare_referrals_values(page, sortby, form, errors)
        return request.render("sale_referral_lifecycle.portal_my_referrals", values)

    def _render_referrals_form_error(self, message, page=1, sortby=None, **post):
        """The referrals page with ``message`` above the form sent."""
        values = self._prepare_referrals_values(
            page, sortby, self._referral_form_values(post), {"form": message}
        )
        return request.render("sale_referral_lifecycle.portal_my_referrals", values)

    @http.route(
        ["/my/referrals/<int:referral_id>"], type="http", auth="user", website=True
    )
    @checked_route(numbers={"referral_id": MAX_RECORD_ID})
    def portal_my_referral(self, referral_id, sent=None, **kw):
        try:
            referral_sudo = self._document_check_access(
                "referral.referral", referral_id
            )
        except (AccessError, MissingError):
            raise request.not_found() from None
        # The record rule already says so; checked again on the record read
        # as superuser, whatever the rules become.
        if referral_sudo.sponsor_id != self._referral_sponsor():
            raise request.not_found()
        values = self._prepare_portal_layout_values()
        values.update(
            {"referral": referral_sudo, "page_name": "referral", "sent": sent}
        )
        values = self._get_page_view_values(
            referral_sudo, None, values, "my_referrals_history", False
        )
        return request.render("sale_referral_lifecycle.portal_my_referral", values)

    # ------------------------------------------------------------------
    # /my/wallet
    # ------------------------------------------------------------------

    def _prepare_wallet_values(self, page=1, renewal_form=None, renewal_error=None):
        wallet = self._referral_wallet()
        self._record_followup_visit("wallet")
        values = self._prepare_portal_layout_values()
        values.update(wallet._portal_wallet_values(page, self._items_per_page))
        values.update(
            {
                "page_name": "wallet",
                "wallet": wallet,
                "pager": portal_pager(
                    url="/my/wallet",
                    total=values["movement_count"],
                    page=page,
                    step=self._items_per_page,
                ),
                "today": fields.Date.context_today(request.env.user),
                # The sponsor's choice on renewals: as sent when refused.
                "renewal_form": renewal_form
                or {
                    "auto_apply": wallet.renewal_auto_apply,
                    "max_amount": wallet._portal_renewal_max_amount_text()
                    if wallet
                    else "",
                },
                "renewal_error": renewal_error,
            }
        )
        return values

    @http.route(
        ["/my/wallet", "/my/wallet/page/<int:page>"],
        type="http",
        auth="user",
        website=True,
    )
    @checked_route(numbers={"page": MAX_PAGE})
    def portal_my_wallet(self, page=1, **kw):
        if not self._referral_program():
            return request.redirect("/my")
        values = self._prepare_wallet_values(page)
        return request.render("sale_referral_lifecycle.portal_my_wallet", values)

    @http.route(
        ["/my/wallet/renewals"],
        type="http",
        auth="user",
        website=True,
        methods=["GET", "POST"],
    )
    @checked_route(form="_render_wallet_renewals_error")
    def portal_my_wallet_renewals(self, auto_apply=None, max_amount=None, **post):
        """The sponsor's choice on its renewals: apply its credit by itself
        or not, and the most one renewal takes. Only the user's own wallet
        (any partner or wallet id sent is ignored); CSRF checked by the
        framework for every POST of type "http"."""
        if not self._referral_program():
            return request.redirect("/my")
        wallet = self._referral_wallet()
        if not wallet or request.httprequest.method != "POST":
            # A link followed (GET) changes nothing.
            return request.redirect("/my/wallet")
        # sudo: the user's own wallet (found from its commercial entity);
        # portal users have no write access on wallets.
        wallet.sudo()._portal_set_renewal_preferences(auto_apply, max_amount)
        return request.redirect("/my/wallet?renewals_saved=1")

    def _render_wallet_renewals_error(
        self, message, auto_apply=None, max_amount=None, **post
    ):
        """The wallet page with ``message`` above the renewal form sent."""
        values = self._prepare_wallet_values(
            renewal_form={
                "auto_apply": auto_apply in ("on", "1"),
                "max_amount": max_amount or "",
            },
            renewal_error=message,
        )
        return request.render("sale_referral_lifecycle.portal_my_wallet", values)

    @http.route(["/my/wallet/statement"], type="http", auth="user", website=True)
    @checked_route()
    def portal_my_wallet_statement(self, date_from=None, date_to=None, **kw):
        """The statement PDF of the chosen period; without a PDF engine on
        the server, the statement on a portal page that says so. A period that
        cannot be read or ends before it starts, or any other failure
        (logged), is told on the wallet page."""
        wallet = self._referral_wallet()
        if not wallet:
            return request.redirect("/my/wallet")
        date_from, date_to, error = wallet._portal_statement_period(date_from, date_to)
        if error:
            return request.redirect(f"/my/wallet?statement_error={error}")
        try:
            content, content_type = wallet._portal_render_statement(date_from, date_to)
        except Exception:
            _logger.exception(
                "The referral credit statement of wallet %s could not be rendered",
                wallet.id,
            )
            return request.redirect("/my/wallet?statement_error=failed")
        if content_type != "pdf":
            # No PDF engine: the statement on a portal page that says so.
            values = self._prepare_portal_layout_values()
            values.update({"page_name": "wallet_statement", "statement_html": content})
            return request.render(
                "sale_referral_lifecycle.portal_my_wallet_statement", values
            )
        headers = [
            ("Content-Type", "application/pdf"),
            ("Content-Length", len(content)),
            (
                "Content-Disposition",
                http.content_disposition("referral-credit-statement.pdf"),
            ),
        ]
        return request.make_response(content, headers=headers)

    # ------------------------------------------------------------------
    # Public referral link /r/<code>
    # ------------------------------------------------------------------

    @http.route(
        ["/r/<string:code>"],
        type="http",
        auth="public",
        website=True,
        methods=["GET", "POST"],
        sitemap=False,
    )
    @checked_route(form="_render_referral_link_error")
    def referral_link(self, code, **post):
        Referral = request.env["referral.referral"]
        sponsor = request.env["res.partner"].sudo()._portal_find_link_sponsor(code)
        if not sponsor or not Referral._portal_get_program(
            sponsor.company_id or request.env.company
        ):
            raise request.not_found()
        form, errors, done = {}, {}, False
        if request.httprequest.method == "GET":
            self._record_followup_link_visit(sponsor)
        if request.httprequest.method == "POST":
            form = self._referral_form_values(post)
            if post.get("website_url"):
                # Honeypot: a field people never see, filled by robots only.
                # Answered as a success, with nothing recorded.
                done = True
            else:
                # A valid form gets the same confirmation whatever became of
                # the referral (created, held for review, refused): the
                # visitor learns nothing of who is a customer or referred.
                # The referral links the referee to the sponsor: its first
                # confirmed order wins it, as an order with the code would.
                _referral, errors = Referral._portal_create_referral(
                    sponsor, form, "code", request.httprequest.remote_addr
                )
                done = not errors
        return self._render_referral_link(sponsor, code, form, errors, done)

    def _record_followup_visit(self, page):
        """A visit of a referral or wallet page: a signal for the follow-ups
        (at most one a day per page)."""
        # sudo: signals are written for the follow-ups, never read here.
        request.env["partner.followup.signal"].sudo()._record(
            "visit", request.env.user.partner_id, request.env.company, page=page
        )

    def _record_followup_link_visit(self, sponsor):
        """A visit of the sponsor's public link: a signal for the sponsor's
        follow-ups, once a day per visitor's session."""
        key = f"referral_link_visit_{sponsor.id}"
        today = fields.Date.today().isoformat()
        if request.session.get(key) == today:
            return
        request.session[key] = today
        # sudo: the visitor is public; the signal is the sponsor's.
        request.env["partner.followup.signal"].sudo()._record(
            "link_visit", sponsor, sponsor.company_id or request.env.company
        )

    def _render_referral_link(self, sponsor, code, form, errors, done):
        return request.render(
            "sale_referral_lifecycle.referral_link_page",
            {
                # Only the company's name: never its people or addresses.
                "sponsor_name": sponsor.name,
                "code": code,
                "program": request.env["referral.referral"]._portal_get_program(
                    sponsor.company_id or request.env.company
                ),
                "form": form,
                "errors": errors,
                "done": done,
            },
        )

    def _render_referral_link_error(self, message, code, **post):
        """The link's form again with a neutral message: the visitor is not
        told the back office's reasons."""
        sponsor = request.env["res.partner"].sudo()._portal_find_link_sponsor(code)
        if not sponsor:
            raise request.not_found()
        errors = {
            "form": request.env._(
                "We could not record this referral. Please check the details "
                "or contact us."
            )
        }
        return self._render_referral_link(
            sponsor, code, self._referral_form_values(post), errors, False
        )
