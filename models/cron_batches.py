# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""Cron jobs under concurrency: what the addon's jobs share so that an
ordinary concurrent write never fails a run nor loses its batch.

Odoo runs requests and cron jobs in REPEATABLE READ transactions. When a
request commits a write to a row that a running transaction then locks or
writes (a wallet spent while the queue's job rewards its owner), PostgreSQL
refuses the second with a serialization failure. Odoo retries a request
(``odoo.service.model.retrying``), never a cron job: the whole call would be
rolled back, counted as a failure, and its triggers dropped.

Within the same transaction a retry would fail again (its snapshot stays
old), so a job here does what it can and leaves the rest to its next call,
woken at once (``ir.cron._trigger``), in a new transaction:

- ``run_in_savepoints``: a batch of independent groups (a contact's queue
  rows) processed in one savepoint; on a concurrency error the savepoint is
  rolled back and the batch split in halves, down to the single groups that
  clash, which are left for the next call: the others commit.
- ``defer_on_conflict``: a cron call that cannot be split is rolled back as
  a whole to its savepoint and called again at once, not failed.
"""

import functools
import logging

from odoo.service.model import PG_CONCURRENCY_EXCEPTIONS_TO_RETRY

_logger = logging.getLogger(__name__)


def retrigger(env, cron_xmlid):
    """Wake the cron ``cron_xmlid`` again at once (once committed)."""
    cron = env.ref(cron_xmlid, raise_if_not_found=False)
    if cron:
        cron.sudo()._trigger()


def try_in_savepoint(env, function):
    """Call ``function()`` in a savepoint: True when done, False when it met
    a concurrent update (rolled back, nothing raised)."""
    try:
        with env.cr.savepoint():
            function()
    except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY:
        env.invalidate_all()
        return False
    return True


def run_in_savepoints(env, groups, process):
    """Call ``process(some_groups)`` on ``groups`` (a list), all of them in
    one call first, each call in a savepoint of its own. A call that fails on
    concurrency (serialization failure, deadlock, lock not available) is
    rolled back and its groups processed again in halves; a single group
    that still fails is given up. Return the groups given up, in their
    order: the caller leaves them for its next call."""
    given_up = []
    pending = [list(groups)] if groups else []
    first = True
    while pending:
        chunk = pending.pop(0)
        if not first:
            # What the groups done left for the commit (the ORM's tracking,
            # cron wake-ups) runs now: rolling a savepoint back clears it.
            env.flush_all()
            env.cr.precommit.run()
        first = False
        try:
            with env.cr.savepoint():
                process(chunk)
        except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
            env.invalidate_all()
            if len(chunk) == 1:
                _logger.info(
                    "Concurrent update (%s): left for the next call",
                    type(error).__name__,
                )
                given_up.extend(chunk)
            else:
                half = len(chunk) // 2
                pending[0:0] = [chunk[:half], chunk[half:]]
    return given_up


def defer_on_conflict(cron_xmlid):
    """Decorate a cron method: on a concurrency error, its work is rolled
    back to a savepoint taken at its start and the cron ``cron_xmlid`` woken
    again at once; the call returns ``None`` instead of failing."""

    def decorate(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            try:
                with self.env.cr.savepoint():
                    return method(self, *args, **kwargs)
            except PG_CONCURRENCY_EXCEPTIONS_TO_RETRY as error:
                self.env.invalidate_all()
                _logger.info(
                    "Concurrent update (%s): %s called again",
                    type(error).__name__,
                    cron_xmlid,
                )
                retrigger(self.env, cron_xmlid)
                return None

        return run

    return decorate
