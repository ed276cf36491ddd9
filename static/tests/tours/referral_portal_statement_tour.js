/** @odoo-module **/

import {registry} from "@web/core/registry";

// The sponsor downloads its statement from the portal; without a PDF engine
// on the server, the statement shows as a page that says so.
registry.category("web_tour.tours").add("sale_referral_lifecycle_portal_statement", {
    url: "/my/wallet",
    steps: () => [
        {
            content: "The wallet lists the reward",
            trigger: ".o_referral_movement:contains(Reward for referring Tour Statement Prospect)",
        },
        {
            content: "Ask for the statement of the default period",
            trigger: "form.o_referral_statement button[type=submit]",
            run: "click",
        },
        {
            content: "The page says why the statement is no PDF",
            trigger: ".o_referral_statement_no_pdf:contains(wkhtmltopdf)",
        },
        {
            content: "The statement shows the movement",
            trigger:
                ":iframe tr[name=movement]:contains(Reward for referring Tour Statement Prospect)",
        },
        {
            content: "Back to the credit",
            trigger: ".o_referral_statement_no_pdf a[href='/my/wallet']",
            run: "click",
        },
        {
            content: "The wallet page again",
            trigger: "form.o_referral_statement",
        },
    ],
});
