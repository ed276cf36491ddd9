#!/usr/bin/env python3
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Check the addon's layout: one model, one file (``make lint-layout``).

Fails, listing the offenders, when

- a model is defined or extended in more than one .py file of the addon
  (its whole tree but tests/, dev/, bench/, migrations/): a class with
  ``_name``, or with ``_inherit`` and no ``_name`` (the model is then the
  inherited one, the first of a list);
- a file under models/ holds classes of two different models (plain classes,
  without ``_name`` or ``_inherit``, are helpers and do not count);
- a ``consider-merging-classes-inherited`` pylint disable is left in the
  addon's Python files or in its pylint configuration.

Usage: ``python3 dev/check_layout.py [ADDON_FOLDER]`` (default: this
repository), or ``--self-test`` to check the checker on small sample trees.
"""

import ast
import configparser
import contextlib
import io
import re
import sys
import tempfile
import textwrap
import tokenize
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_THE_ADDON = {"tests", "dev", "bench", "migrations"}  # top-level folders
ONE_MODEL_PER_FILE = "models"
MERGE_MESSAGE = ("consider-merging-classes-inherited", "R8180")
DISABLE_COMMENT = re.compile(r"pylint\s*:\s*disable\s*=\s*(?P<names>[\w\s,-]+)")


def addon_files(root):
    """The addon's .py files, as paths relative to ``root``."""
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        parts = relative.parts
        if parts[0] in NOT_THE_ADDON or any(
            part.startswith(".") or part == "__pycache__" for part in parts
        ):
            continue
        yield relative


def say(*lines):
    sys.stdout.write("".join(f"{line}\n" for line in lines))


def literal(node):
    try:
        return ast.literal_eval(node)
    except ValueError:
        return None


def models_of(tree):
    """``[(model, line)]`` for the model classes of a module: the model a
    class defines (``_name``) or extends (``_inherit`` without ``_name``)."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ClassDef):
            continue
        attrs = {}
        for statement in node.body:
            if isinstance(statement, ast.Assign):
                targets, value = statement.targets, statement.value
            elif isinstance(statement, ast.AnnAssign) and statement.value:
                targets, value = [statement.target], statement.value
            else:
                continue
            for target in targets:
                if isinstance(target, ast.Name) and target.id in ("_name", "_inherit"):
                    attrs[target.id] = literal(value)
        name, inherit = attrs.get("_name"), attrs.get("_inherit")
        if isinstance(inherit, list | tuple):
            inherit = inherit[0] if inherit else None
        model = name or inherit
        if isinstance(model, str):
            found.append((model, node.lineno))
    return found


def merge_disables(source):
    """Lines of the pylint disable comments naming the merge message."""
    lines = []
    tokens = tokenize.generate_tokens(io.StringIO(source).readline)
    for token in tokens:
        if token.type != tokenize.COMMENT:
            continue
        match = DISABLE_COMMENT.search(token.string)
        names = {name.strip() for name in match["names"].split(",")} if match else ()
        if any(message in names for message in MERGE_MESSAGE):
            lines.append(token.start[0])
    return lines


def config_disables(root):
    """The pylint configuration files of ``root`` whose ``disable`` option
    names the merge message."""
    found = []
    for path in sorted(root.glob(".pylintrc*")):
        config = configparser.ConfigParser(interpolation=None, strict=False)
        config.read(path, encoding="utf-8")
        for section in config.sections():
            names = config[section].get("disable", "").replace("\n", ",").split(",")
            if any(message in map(str.strip, names) for message in MERGE_MESSAGE):
                found.append(f"{path.name} [{section}] disable=")
    return found


def check(root):
    """``({rule: [offenders]}, number of models)``; no rule: the layout is
    right."""
    places = defaultdict(list)  # model -> [(path, line)]
    mixed, disables = [], []
    for relative in addon_files(root):
        source = (root / relative).read_text(encoding="utf-8")
        classes = models_of(ast.parse(source, filename=str(relative)))
        for model, line in classes:
            places[model].append((relative, line))
        models = {model for model, _line in classes}
        if relative.parts[0] == ONE_MODEL_PER_FILE and len(models) > 1:
            listed = ", ".join(f"{model} (line {line})" for model, line in classes)
            mixed.append(f"{relative}: {listed}")
        disables += [f"{relative}:{line}" for line in merge_disables(source)]
    spread = []
    for model, where in sorted(places.items()):
        files = {path for path, _line in where}
        if len(files) > 1:
            listed = ", ".join(f"{path}:{line}" for path, line in where)
            spread.append(f"{model} ({len(files)} files): {listed}")
    findings = {
        "Models defined or extended in more than one file": spread,
        f"Files of {ONE_MODEL_PER_FILE}/ with classes of more than one model": mixed,
        "consider-merging-classes-inherited disables left": disables
        + config_disables(root),
    }
    return {rule: lines for rule, lines in findings.items() if lines}, len(places)


def report(root):
    findings, models = check(root)
    if not findings:
        say(f"layout: one model, one file ({models} models, no merge disable).")
        return 0
    for title, lines in findings.items():
        say(f"{title} ({len(lines)}):", *(f"  {line}" for line in lines))
    say(f"layout: {sum(map(len, findings.values()))} finding(s) in {root}.")
    return 1


# Self-test -------------------------------------------------------------------

GOOD = {
    "__init__.py": "from . import models\n",
    "models/__init__.py": "from . import sale_order, referral\n",
    "models/sale_order.py": """
        class SaleOrder(models.Model):
            _inherit = "sale.order"
        """,
    "models/referral/referral_referral.py": """
        class Helper:
            pass
        class ReferralReferral(models.Model):
            _name = "referral.referral"
            _inherit = ["mail.thread", "mail.activity.mixin"]
        """,
    "models/account_move.py": """
        class AccountMove(models.Model):
            _name = "account.move"
            _inherit = ["account.move", "referral.credit.mixin"]
        """,
    "wizards/referral_wizard.py": """
        class Wizard(models.TransientModel):
            _name = "referral.wizard"
        class WizardLine(models.TransientModel):
            _name = "referral.wizard.line"
        """,
    "tests/test_sale_order.py": """
        class SaleOrderInTests(models.Model):
            _inherit = "sale.order"
        """,
    ".pylintrc": "[MESSAGES CONTROL]\ndisable=all\nenable=\n"
    "    consider-merging-classes-inherited,\n",
}
BAD = {
    "a model extended in two files": {
        "models/sale_order_extra.py": """
            class SaleOrderExtra(models.Model):
                _inherit = ["sale.order"]
            """
    },
    "a model defined in one file, extended in another": {
        "reports/referral_report.py": """
            class Referral(models.Model):
                _inherit = "referral.referral"
            """
    },
    "two models in one file of models/": {
        "models/referral/referral_referral.py": """
            class ReferralReferral(models.Model):
                _name = "referral.referral"
            class ReferralTag(models.Model):
                _name = "referral.tag"
            """
    },
    "a merge disable in a comment": {
        "models/sale_order.py": """
            class SaleOrder(models.Model):
                # pylint: disable=consider-merging-classes-inherited
                _inherit = "sale.order"
            """
    },
    "a merge disable in the pylint configuration": {
        ".pylintrc-mandatory": "[MESSAGES CONTROL]\ndisable=\n"
        "    R8180,\n    missing-readme\n"
    },
}


def write_tree(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")


def self_test():
    failures = 0
    cases = [("the good sample", {}, False)]
    cases += [(title, files, True) for title, files in BAD.items()]
    for title, files, expect_findings in cases:
        with tempfile.TemporaryDirectory() as folder:
            write_tree(Path(folder), {**GOOD, **files})
            findings, _models = check(Path(folder))
        ok = bool(findings) == expect_findings
        failures += not ok
        say(f"{'ok' if ok else 'FAILED'}: {title}")
        say(*(f"      {rule}: {'; '.join(lines)}" for rule, lines in findings.items()))
    say(f"self-test: {len(cases) - failures} of {len(cases)} cases as expected.")
    return 1 if failures else 0


def main(argv):
    if argv == ["--self-test"]:
        return self_test()
    return report(Path(argv[0]).resolve() if argv else ROOT)


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main(sys.argv[1:]))
