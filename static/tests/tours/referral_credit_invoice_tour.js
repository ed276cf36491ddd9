/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_credit_invoice", {
    steps: () => [
        {
            content: "Open the credit wizard of the draft invoice",
            trigger: ".o_form_view button[name=action_open_referral_credit_wizard]",
            run: "click",
        },
        {
            content: "Set the amount to apply",
            trigger: ".modal div[name=amount] input",
            run: "edit 50",
        },
        {
            content: "Apply it",
            trigger: ".modal button[name=action_apply]",
            run: "click",
        },
        {
            content: "The wizard is closed and the credit line is on the invoice",
            trigger:
                "body:not(:has(.modal)) .o_field_one2many[name=invoice_line_ids] .o_data_row:contains(Referral credit)",
        },
        {
            content: "Post the invoice",
            trigger: ".o_form_view button[name=action_post]:not(.d-none)",
            run: "click",
        },
        {
            content: "The invoice is posted",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Posted)",
        },
    ],
});
