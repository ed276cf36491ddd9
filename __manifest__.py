# Copyright 2026 sale_referral_lifecycle contributors
# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
{
    "name": "Sales Referrals and Customer Lifecycle",
    "summary": "Referral links between customers, routed to the sponsor's "
    "salesperson, with follow-up activities",
    "version": "18.0.1.0.0",
    "category": "Sales/Sales",
    "website": "https://github.com/sale-referral-lifecycle/sale_referral_lifecycle",
    "author": "sale_referral_lifecycle contributors",
    "license": "LGPL-3",
    "application": False,
    "installable": True,
    "depends": ["sale_management", "account", "portal", "utm", "resource"],
    "data": [
        "security/sale_referral_lifecycle_security.xml",
        "security/ir.model.access.csv",
        "data/ir_sequence_data.xml",
        "data/utm_data.xml",
        "data/mail_activity_plan_data.xml",
        "data/referral_program_data.xml",
        "data/partner_lifecycle_stage_data.xml",
        "data/ir_cron_data.xml",
        "views/partner_lifecycle_stage_views.xml",
        "views/partner_lifecycle_history_views.xml",
        "views/product_template_views.xml",
        "views/referral_program_views.xml",
        "views/referral_referral_views.xml",
        "views/res_partner_views.xml",
        "views/sale_order_views.xml",
        "wizards/referral_create_wizard_views.xml",
        "reports/sale_report_views.xml",
        "views/menus.xml",
    ],
    "assets": {
        "web.assets_tests": [
            "sale_referral_lifecycle/static/tests/tours/*.js",
        ],
    },
    "demo": ["demo/referral_demo.xml"],
    "post_init_hook": "post_init_hook",
}
