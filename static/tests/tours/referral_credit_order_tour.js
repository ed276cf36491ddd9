/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_credit_order", {
    steps: () => [
        {
            content: "Open the credit wizard of the renewal quotation",
            trigger: ".o_form_view button[name=action_open_referral_credit_wizard]",
            run: "click",
        },
        {
            content: "Apply the amount proposed",
            trigger: ".modal button[name=action_apply]",
            run: "click",
        },
        {
            content: "The wizard is closed and a credit line is added",
            trigger:
                "body:not(:has(.modal)) .o_field_one2many[name=order_line] .o_data_row:contains(Referral credit)",
        },
        {
            content: "Confirm the order",
            trigger: ".o_form_view button[name=action_confirm]:not(.d-none)",
            run: "click",
        },
        {
            content: "The order is confirmed",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Sales Order)",
        },
    ],
});
