# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).

from odoo.tools import SQL, sql

from .models.lifecycle.partner_lifecycle_engine import (
    COMMERCIAL_ENTITY_DOMAIN,
    LIFECYCLE_COLUMNS,
)


def post_init_hook(env):
    """Give every existing company its default referral program and every
    existing customer its lifecycle stage."""
    env["res.company"].search([])._create_default_referral_program()
    # Companies with a chart of accounts book their referral credit.
    env["referral.program"].with_context(active_test=False).search(
        [("accounting_enabled", "=", False)]
    )._setup_referral_accounting()
    # Batches of commercial entities (subsidiaries included): memory stays
    # flat whatever the number of contacts.
    env["partner.lifecycle.engine"]._recompute_in_batches(
        env["res.partner"]
        .with_context(active_test=False)
        .search(COMMERCIAL_ENTITY_DOMAIN, order="id")
        .ids
    )


# The lifecycle columns of res_partner that became ``company_dependent``
# (jsonb keyed by company id) in 18.0.1.1.0, with their former SQL types.
COMPANY_DEPENDENT_LIFECYCLE_COLUMNS = (
    *LIFECYCLE_COLUMNS,
    "lifecycle_stage_locked",
)


def migrate_lifecycle_columns_to_company(cr):
    """Convert the former plain lifecycle columns of res_partner into the
    jsonb of ``company_dependent`` fields, each value keyed by the contact's
    company (the main company for a shared contact): nothing is lost, the
    values now belong to that company. Columns already jsonb are left
    alone (run twice, it does nothing). Their foreign keys go (Odoo checks
    company-dependent many2one targets itself) and the views reading them
    (``sale_report``) are dropped, rebuilt by the update. The history rows
    get the same company. Returns the columns converted."""
    cr.execute(
        "SELECT res_id FROM ir_model_data WHERE module = 'base' "
        "AND name = 'main_company'"
    )
    row = cr.fetchone()
    if row:
        main_company_id = row[0]
    else:
        cr.execute("SELECT min(id) FROM res_company")
        main_company_id = cr.fetchone()[0]
    converted = []
    for column in COMPANY_DEPENDENT_LIFECYCLE_COLUMNS:
        cr.execute(
            "SELECT udt_name FROM information_schema.columns "
            "WHERE table_name = 'res_partner' AND column_name = %s",
            [column],
        )
        column_type = (cr.fetchone() or [None])[0]
        if not column_type or column_type == "jsonb":
            continue
        cr.execute(
            SQL(
                """
                SELECT con.conname
                  FROM pg_constraint con
                  JOIN pg_attribute att
                    ON att.attrelid = con.conrelid AND att.attnum = ANY(con.conkey)
                 WHERE con.conrelid = 'res_partner'::regclass
                   AND con.contype = 'f' AND att.attname = %s
                """,
                column,
            )
        )
        for (constraint,) in cr.fetchall():
            sql.drop_constraint(cr, "res_partner", constraint)
        sql.drop_depending_views(cr, "res_partner", column)
        # A false box is no value (as the ORM stores company-dependent ones).
        empty = (
            SQL("NOT %s", SQL.identifier(column))
            if column_type == "bool"
            else SQL("false")
        )
        cr.execute(
            SQL(
                """
                ALTER TABLE res_partner
                ALTER COLUMN %(column)s DROP DEFAULT,
                ALTER COLUMN %(column)s TYPE jsonb USING
                    CASE WHEN %(column)s IS NULL OR %(empty)s THEN NULL
                         ELSE jsonb_build_object(
                             COALESCE(company_id, %(main)s)::text,
                             to_jsonb(%(column)s))
                    END
                """,
                column=SQL.identifier(column),
                empty=empty,
                main=main_company_id,
            )
        )
        converted.append(column)
    if converted and sql.column_exists(cr, "partner_lifecycle_history", "company_id"):
        cr.execute(
            SQL(
                """
                UPDATE partner_lifecycle_history h
                   SET company_id = COALESCE(p.company_id, %s)
                  FROM res_partner p
                 WHERE p.id = h.partner_id AND h.company_id IS NULL
                """,
                main_company_id,
            )
        )
    return converted


def set_welcome_discount_product(env):
    """Give the programs without a welcome discount product the addon's own
    *Welcome discount* product (before 18.0.1.2.0 the welcome discount used
    the credit product). Returns the programs changed."""
    product = env.ref(
        "sale_referral_lifecycle.product_referral_welcome_discount",
        raise_if_not_found=False,
    )
    programs = (
        env["referral.program"]
        .with_context(active_test=False)
        .search([("welcome_discount_product_id", "=", False)])
    )
    if product and programs:
        programs.write({"welcome_discount_product_id": product.id})
    return programs if product else programs.browse()
