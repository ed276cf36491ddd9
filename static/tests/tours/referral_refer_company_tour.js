/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_refer_company", {
    steps: () => [
        {
            content: "Open the Referrals tab of the sponsor",
            trigger: ".o_notebook .nav-link:contains(Referrals)",
            run: "click",
        },
        {
            content: "Refer a company",
            trigger: "button[name=action_refer_company]",
            run: "click",
        },
        {
            content: "Type the referred company",
            trigger: ".modal div[name=referee_company_name] input",
            run: "edit Tour Prospect",
        },
        {
            content: "Type the person to call",
            trigger: ".modal div[name=referee_contact_name] input",
            run: "edit Tina Tour",
        },
        {
            content: "Type the email",
            trigger: ".modal div[name=referee_email] input",
            run: "edit tina@tour-prospect.example.com",
        },
        {
            content: "Record the referral",
            trigger: ".modal button[name=action_create]",
            run: "click",
        },
        {
            content: "The referral form shows the referred company",
            trigger: ".o_form_view div[name=referee_id] input:value(Tour Prospect)",
        },
        {
            content: "The sponsor call is planned",
            trigger: ".o-mail-Activity:contains(Call the sponsor)",
        },
        {
            content: "The prospect call is planned",
            trigger: ".o-mail-Activity:contains(Call the prospect)",
        },
    ],
});
