# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Referral codes: how they are made and how a typed or pasted code is read.
Every reader (order, import, public link, search) goes through
``normalize_referral_code``."""

import re
import secrets

# No 0/O, 1/I/L: a code is read aloud and typed by hand.
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
# Longer input is not a code: refused before it reaches the database (the
# column is as long).
CODE_MAX_LENGTH = 64
# A code given by a Sales administrator: letters and digits, long enough not
# to be guessed at once.
CODE_MIN_LENGTH = 4
_CODE_CHARACTERS = re.compile(r"[A-Z0-9]+")


def generate_referral_code():
    return "".join(secrets.choice(CODE_ALPHABET) for _i in range(CODE_LENGTH))


def normalize_referral_code(code):
    """A typed code as codes are made: upper case, without any space (a code
    read over the phone is often typed in groups). Empty for anything that
    cannot be a code: longer than a code, or holding anything but letters
    and digits (punctuation, control characters)."""
    code = "".join((code or "").split()).upper()
    if len(code) > CODE_MAX_LENGTH or not _CODE_CHARACTERS.fullmatch(code):
        return ""
    return code
