# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Rendering of emails, as the follow-up engine sends a template to hundreds
of contacts at once through the mass-mail composer (which renders the
template's fields, or its own copy of them): with ``compile_qweb_once`` in
the context, a QWeb body is parsed and compiled once per rendering (one
template, one language, the records of a composer's batch) instead of once
per record, then rendered for each record with the values Odoo's own loop
gives it; likewise each expression of an inline template (the subject,
sender, recipients, language) is checked and compiled once per rendering,
then evaluated per record as ``safe_eval`` evaluates it. The emails are the
same (a test compares them with the composer's own)."""

from lxml import html
from markupsafe import Markup

from odoo import models
from odoo.tools import safe_eval
from odoo.tools.rendering_tools import parse_inline_template

# The context key that asks for it.
COMPILE_QWEB_ONCE = "compile_qweb_once"


class MailRenderMixin(models.AbstractModel):
    _inherit = "mail.render.mixin"

    def _render_template_qweb(
        self, template_src, model, res_ids, add_context=None, options=None
    ):
        if (
            not self.env.context.get(COMPILE_QWEB_ONCE)
            or len(res_ids or ()) < 2
            or not self._has_unsafe_expression_template_qweb(template_src, model)
        ):
            return super()._render_template_qweb(
                template_src, model, res_ids, add_context=add_context, options=options
            )
        # What Odoo's loop renders for each record, the first one compiling
        # the template: the rendering options and the values other than the
        # record do not change from one record to the next.
        variables = self._render_eval_context()
        if add_context:
            variables.update(**add_context)
        render_options = dict(options or {})
        if (
            not self._unrestricted_rendering
            and not self.env.is_admin()
            and not self.env.user.has_group("mail.group_mail_template_editor")
        ):
            render_options["raise_on_forbidden_code_for_model"] = model
        template = html.fragment_fromstring(template_src, create_parent="div")
        QWeb = self.env["ir.qweb"]
        functions = None
        results = {}
        for record in self.env[model].browse(res_ids):
            variables["object"] = record
            # ir.qweb._render, the template compiled for the first record.
            values = variables.copy()
            try:
                qweb = QWeb.with_context(**render_options)._prepare_environment(values)
                safe_eval.check_values(values)
                if functions is None:
                    functions, def_name = qweb._compile(template)
                rendered = Markup("".join(functions[def_name](qweb, values)))
            except Exception:  # noqa: BLE001
                # Odoo's own loop on this record: the same error, raised as
                # Odoo raises it.
                results.update(
                    super()._render_template_qweb(
                        template_src, model, record.ids, add_context, options
                    )
                )
                continue
            # Without the <div> wrapping the template's nodes.
            results[record.id] = rendered[5:-6]
        return results

    def _render_template_inline_template(
        self, template_txt, model, res_ids, add_context=None, options=None
    ):
        if (
            not self.env.context.get(COMPILE_QWEB_ONCE)
            or len(res_ids or ()) < 2
            or not template_txt
            or not self._has_unsafe_expression_template_inline_template(
                str(template_txt), model
            )
        ):
            return super()._render_template_inline_template(
                template_txt, model, res_ids, add_context=add_context, options=options
            )
        # The first record through Odoo's own loop (its access check, its
        # errors), the others with each expression compiled once.
        res_ids = list(res_ids)
        results = dict.fromkeys(res_ids, "")
        results.update(
            super()._render_template_inline_template(
                template_txt, model, res_ids[:1], add_context, options
            )
        )
        instructions = parse_inline_template(str(template_txt))
        codes = {
            expression: safe_eval.test_expr(
                expression, safe_eval._SAFE_OPCODES, mode="eval"
            )
            for _string, expression, _default in instructions
            if expression
        }
        variables = self._render_eval_context()
        if add_context:
            variables.update(**add_context)
        for record in self.env[model].browse(res_ids[1:]):
            variables["object"] = record
            rendered = []
            try:
                # rendering_tools.render_inline_template, safe_eval's steps
                # after the compilation.
                for string, expression, default in instructions:
                    rendered.append(string)
                    if expression:
                        values = dict(variables)
                        safe_eval.check_values(values)
                        values["__builtins__"] = dict(safe_eval._BUILTINS)
                        result = (
                            safe_eval.unsafe_eval(codes[expression], values) or default
                        )
                        if result:
                            rendered.append(str(result))
            except Exception:  # noqa: BLE001
                # Odoo's own loop on this record: the same error, raised as
                # Odoo raises it.
                results.update(
                    super()._render_template_inline_template(
                        template_txt, model, record.ids, add_context, options
                    )
                )
                continue
            results[record.id] = "".join(rendered)
        return results
