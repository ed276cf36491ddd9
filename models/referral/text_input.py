# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Text typed by people the addon does not know (portal, referral links,
imports, RPC): what may reach the database. Read by the referral model and
by the portal controller."""

import re

# Control characters (Unicode category Cc: C0, DEL, C1), NUL included, but
# the tab (pasted with a value, harmless); a multi-line text keeps its line
# breaks.
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_CONTROL_MULTILINE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value, multiline=False):
    """Whether ``value`` holds a NUL or another control character (a tab
    is allowed, and line breaks in a ``multiline`` text)."""
    pattern = _CONTROL_MULTILINE if multiline else _CONTROL
    return bool(pattern.search(value or ""))


def single_line(value):
    """``value`` on one line: its runs of white space (tabs and line breaks
    of a pasted value included) as single spaces, without the outer ones."""
    return " ".join((value or "").split())
