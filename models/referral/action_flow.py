# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The addon's own actions and flows, told apart from the values of a
``create`` or ``write`` call.

A referral's state (with its dates, first order, review and consent) and a
contact's referral code are written only by the methods that decide them:
the referral's buttons, the order confirmation winning it, rewards and their
revocation, the fraud review, the portal, code generation. Those methods
run their writes inside ``action_flow()``; ``create`` and ``write`` refuse
those fields outside it.

The mark lives in a context variable of the Python call stack: neither the
values nor the context of an RPC call (which its caller controls) can set
it, and it ends with the ``with`` block that set it."""

import contextvars
from contextlib import contextmanager

_IN_ACTION_FLOW = contextvars.ContextVar(
    "sale_referral_lifecycle_action_flow", default=False
)


@contextmanager
def action_flow():
    """Run the block as one of the addon's actions or flows, which checked
    beforehand who may run it."""
    token = _IN_ACTION_FLOW.set(True)
    try:
        yield
    finally:
        _IN_ACTION_FLOW.reset(token)


def in_action_flow():
    """Whether the current call runs inside ``action_flow()``."""
    return _IN_ACTION_FLOW.get()
