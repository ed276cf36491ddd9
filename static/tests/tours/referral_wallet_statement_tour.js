/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_wallet_statement", {
    steps: () => [
        {
            content: "Print the statement of the wallet",
            trigger: ".o_form_view button[name=action_print_statement]",
            run: "click",
        },
        {
            content: "Keep the default period and print",
            trigger: ".modal button[name=action_print]",
            run: "click",
        },
        {
            content: "The report action names the wallet",
            trigger: ".o_breadcrumb:contains(Referral credit statement - Tour Wallet Sponsor)",
        },
        {
            content: "The statement shows the wallet's movement",
            trigger: ".o_action :iframe tr[name=movement]:contains(Reward for the tour)",
        },
    ],
});
