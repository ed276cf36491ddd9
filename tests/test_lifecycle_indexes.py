# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

import importlib.util
from pathlib import Path

from odoo.tests import TransactionCase, tagged
from odoo.tools import sql

MIGRATION = (
    Path(__file__).resolve().parent.parent
    / "migrations"
    / "18.0.1.3.0"
    / "post-migration.py"
)
# The values the engine writes for nearly every contact it places: no index.
UNINDEXED = (
    "lifecycle_stage_id",
    "lifecycle_stage_date",
    "lifecycle_quotation_count",
    "lifecycle_order_count",
    "lifecycle_last_order_date",
    "first_contact_date",
    "lifecycle_converted",
    "lifecycle_days_to_client",
    "lifecycle_first_order_date",
    "lifecycle_paid_on_time_rate",
    "lifecycle_window_figures",
)
# The addon's former duplicates of Odoo's default indexes.
FORMER_INDEXES = (
    (
        "res_partner_subscription_end_date_index",
        "subscription_end_date",
        "subscription_end_date",
    ),
    ("res_partner_lifecycle_down_since_index", "lifecycle_down_since", "id"),
)
# The sparse ones, searched through Odoo's default index.
INDEXED = (
    "lifecycle_stage_locked",
    "first_contact_source_id",
    "first_contact_medium_id",
    "subscription_end_date",
    "lifecycle_renewal_count",
    "lifecycle_referral_count",
    "lifecycle_referral_won_count",
    "lifecycle_down_since",
)


@tagged("post_install", "-at_install")
class TestLifecycleIndexes(TransactionCase):
    """The full placement writes the stage and the aggregates of every
    contact: those columns carry no ``(column IS NOT NULL)`` index (an entry
    per contact for no search); the sparse ones keep it."""

    def _index_name(self, column):
        return sql.make_index_name("res_partner", column)

    def _existing(self, columns):
        return {
            column
            for column in columns
            if sql.index_exists(self.env.cr, self._index_name(column))
        }

    def test_dense_values_have_no_index_sparse_ones_keep_it(self):
        self.assertEqual(self._existing(UNINDEXED), set())
        self.assertEqual(self._existing(INDEXED), set(INDEXED))
        # Odoo's default indexes serve the nightly job's lookups: no
        # duplicate of them.
        for name, _column, _key in FORMER_INDEXES:
            self.assertFalse(sql.index_exists(self.env.cr, name), name)
        # The ORM's searches of a sparse value go through its index (the
        # condition ``column IS NOT NULL`` Odoo adds for it), not those of
        # the others.
        Partner = self.env["res.partner"]
        locked = Partner._search([("lifecycle_stage_locked", "=", True)])
        self.assertIn('"lifecycle_stage_locked" IS NOT NULL', locked.select().code)
        staged = Partner._search([("lifecycle_order_count", ">", 2)])
        self.assertNotIn('"lifecycle_order_count" IS NOT NULL', staged.select().code)

    def test_migration_drops_the_default_indexes_of_dense_values(self):
        cr = self.env.cr
        # A database of 18.0.1.2.0: Odoo's default index on every column.
        for column in UNINDEXED:
            sql.create_index(
                cr,
                self._index_name(column),
                "res_partner",
                [f'("{column}" IS NOT NULL)'],
                where=f'"{column}" IS NOT NULL',
            )
        for name, column, key in FORMER_INDEXES:
            sql.create_index(
                cr, name, "res_partner", [key], where=f"{column} IS NOT NULL"
            )
        spec = importlib.util.spec_from_file_location("index_migration", MIGRATION)
        migration = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(migration)
        self.assertEqual(
            set(migration.drop_unused_lifecycle_indexes(self.env)),
            {self._index_name(column) for column in UNINDEXED}
            | {name for name, _column, _key in FORMER_INDEXES},
        )
        self.assertEqual(self._existing(UNINDEXED), set())
        for name, _column, _key in FORMER_INDEXES:
            self.assertFalse(sql.index_exists(cr, name), name)
        self.assertEqual(self._existing(INDEXED), set(INDEXED))
        # Run again (or on a fresh install): nothing left to drop.
        self.assertEqual(migration.drop_unused_lifecycle_indexes(self.env), [])
