/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_credit_fit", {
    steps: () => [
        {
            content: "The quotation says part of its credit is no longer covered",
            trigger: ".o_form_view .o_field_widget[name=referral_credit_uncovered]:contains(60.00)",
        },
        {
            content: "Confirming names the way out",
            trigger: ".o_form_view button[name=action_confirm]:not(.d-none)",
            run: "click",
        },
        {
            content: "The error names Fit Referral Credit",
            trigger: ".modal .modal-body:contains(Fit Referral Credit)",
        },
        {
            content: "Close the error",
            trigger: ".modal .modal-footer button.btn-primary",
            run: "click",
        },
        {
            content: "Fit the credit lines to what the wallet holds",
            trigger: ".o_form_view button[name=action_fit_referral_credit]",
            run: "click",
        },
        {
            content: "Nothing is uncovered anymore",
            trigger: ".o_form_view:not(:has(button[name=action_fit_referral_credit]))",
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
