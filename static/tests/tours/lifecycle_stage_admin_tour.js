/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_stage_admin", {
    steps: () => [
        {
            content: "Open the Referrals menu",
            trigger: ".o_menu_sections button:contains(Referrals)",
            run: "click",
        },
        {
            content: "The To Review menu counts the referrals waiting for a review",
            trigger: ".dropdown-menu .dropdown-item:contains(To Review (1))",
        },
        {
            content: "Close the Referrals menu",
            trigger: ".o_menu_sections button:contains(Referrals)",
            run: "click",
        },
        {
            content: "The stages are listed in their order",
            trigger: ".o_list_view .o_data_row:first-child td[name=name]:contains(Suspect)",
        },
        {
            content: "Drag the second stage above the first",
            trigger: ".o_list_view .o_data_row:nth-child(2) .o_row_handle",
            run: "drag_and_drop(.o_list_view .o_data_row:first-child)",
        },
        {
            content: "Prospect comes first now",
            trigger: ".o_list_view .o_data_row:first-child td[name=name]:contains(Prospect)",
        },
        {
            content: "Open the Client stage",
            trigger: ".o_list_view .o_data_row td[name=name]:contains(Client):not(:contains(Loyal))",
            run: "click",
        },
        {
            content: "Require two confirmed orders",
            trigger: ".o_form_view div[name=min_order_count] input",
            run: "edit 2",
        },
        {
            content: "Save",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Back to the stages",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains(Lifecycle Stages)",
            run: "click",
        },
        {
            content: "The criteria are saved",
            trigger:
                ".o_list_view .o_data_row:contains(Client):not(:contains(Loyal)) td[name=min_order_count]:contains(2)",
        },
    ],
});
