/** @odoo-module **/

import {registry} from "@web/core/registry";

// From an in-progress referral to its quotation, confirmed: the referral is
// won (its reward follows with the queued job, checked by the test).
registry.category("web_tour.tours").add("sale_referral_lifecycle_referral_quotation", {
    steps: () => [
        {
            content: "Make a quotation from the referral",
            trigger: ".o_form_view button[name=action_new_quotation]",
            run: "click",
        },
        {
            content: "The referred company is the customer",
            trigger: ".o_form_view div[name=partner_id] input:value(Tour Quote Prospect)",
        },
        {
            content: "The quotation is linked to the referral",
            trigger: ".o_form_view div[name=referral_id]:contains(REF/)",
        },
        {
            content: "Add a product",
            trigger: ".o_field_x2many_list_row_add a",
            run: "click",
        },
        {
            content: "Choose the plan",
            trigger: ".o_data_row div[name=product_template_id] input",
            run: "edit Tour Quote Plan",
        },
        {
            content: "Pick it",
            trigger: ".o-autocomplete--dropdown-item a:contains(Tour Quote Plan)",
            run: "click",
        },
        {
            content: "The line is priced (its onchanges are done)",
            trigger: ".o_form_view div[name=tax_totals]:contains(1,000.00)",
        },
        {
            content: "Save the quotation",
            trigger: ".o_form_view .o_form_button_save",
            run: "click",
        },
        {
            content: "Saved: the quotation has its number",
            trigger: ".o_breadcrumb .o_last_breadcrumb_item:contains(S0)",
        },
        {
            content: "Back to the referral",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains(REF/)",
            run: "click",
        },
        {
            content: "The referral counts its quotation",
            trigger: ".o_form_view button[name=action_view_quotations]:contains(1)",
            run: "click",
        },
        {
            content: "Confirm the quotation",
            trigger: ".o_form_view button[name=action_confirm]:not(.d-none)",
            run: "click",
        },
        {
            content: "The order is confirmed",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Sales Order)",
        },
        {
            content: "Back to the referral",
            trigger: ".o_breadcrumb .breadcrumb-item a:contains(REF/)",
            run: "click",
        },
        {
            content: "The referral is won by its first order",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Won)",
        },
        {
            content: "Its first order is shown",
            trigger: ".o_form_view button[name=action_view_first_order]",
        },
    ],
});

// The same referral once the queued job posted the sponsor's reward.
registry.category("web_tour.tours").add("sale_referral_lifecycle_referral_rewarded", {
    steps: () => [
        {
            content: "The referral is rewarded",
            trigger: ".o_statusbar_status button.o_arrow_button_current:contains(Rewarded)",
        },
        {
            content: "Open the sponsor's reward",
            trigger: ".o_notebook .nav-link:contains(Sponsor Reward)",
            run: "click",
        },
        {
            content: "The reward is described and posted",
            trigger:
                ".o_field_one2many[name=transaction_ids] .o_data_row:contains(Reward for referring Tour Quote Prospect):contains(Posted)",
        },
    ],
});
