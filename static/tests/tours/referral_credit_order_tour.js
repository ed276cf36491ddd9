/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_credit_order", {
    steps: () => [
        {
            content: "Apply the sponsor's credit on the renewal quotation",
            trigger: ".o_form_view button[name=action_apply_referral_credit]",
            run: "click",
        },
        {
            content: "A credit line is added",
            trigger: ".o_field_one2many[name=order_line] .o_data_row:contains(Referral credit)",
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
