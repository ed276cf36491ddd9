/** @odoo-module **/

import {registry} from "@web/core/registry";

const TEMPLATE = "/sale_referral_lifecycle/static/xls/referral_import_template.xlsx";
const XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

// The referrals' import, as a salesperson does it: the template the dialog
// offers (the rows of data/samples), tested then imported.
registry.category("web_tour.tours").add("sale_referral_lifecycle_referral_import", {
    steps: () => [
        {
            content: "Open the gear menu of the referrals",
            trigger: ".o_cp_action_menus .dropdown-toggle",
            run: "click",
        },
        {
            content: "Import records",
            trigger: ".o-dropdown--menu .dropdown-item:contains(Import records)",
            run: "click",
        },
        {
            content: "The dialog offers the referrals' template",
            trigger: `a[href='${TEMPLATE}']:contains(Import Template for Referrals)`,
            async run() {
                // Upload the template, as downloaded (a tour cannot pick a
                // local file).
                const blob = await (await fetch(TEMPLATE)).blob();
                const file = new File([blob], "referral_import_template.xlsx", {type: XLSX});
                const transfer = new DataTransfer();
                transfer.items.add(file);
                const input = document.querySelector("input.o_input_file");
                input.files = transfer.files;
                input.dispatchEvent(new Event("change", {bubbles: true}));
            },
        },
        {
            content: "The columns are read",
            trigger: ".o_import_data_content:contains(Sponsor Reference)",
        },
        {
            content: "Test the file",
            trigger: ".o_control_panel button:contains(Test)",
            run: "click",
        },
        {
            content: "Nothing to fix",
            trigger: ".o_import_action .alert-info:contains(Everything seems valid)",
        },
        {
            content: "Import it",
            trigger: ".o_control_panel button.btn-primary:contains(Import)",
            run: "click",
        },
        {
            content: "Three referrals imported",
            trigger: ".o_notification:contains(3 records successfully imported)",
        },
        {
            content: "Back on the referrals",
            trigger: ".o_list_view .o_data_row:contains(Maple Dental)",
        },
    ],
});
