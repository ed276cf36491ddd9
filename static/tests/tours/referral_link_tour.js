/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_referral_link", {
    steps: () => [
        {
            content: "The landing page names the sponsor's company",
            trigger: ".o_referral_link h2:contains(Tour Link Sponsor)",
        },
        {
            content: "Type the company",
            trigger: "form.o_referral_form input[name=company_name]",
            run: "edit Visitor Company",
        },
        {
            content: "Type the name",
            trigger: "form.o_referral_form input[name=contact_name]",
            run: "edit Victor Visitor",
        },
        {
            content: "Type the email",
            trigger: "form.o_referral_form input[name=email]",
            run: "edit victor@visitor-company.example.com",
        },
        {
            content: "Tick the consent",
            trigger: "form.o_referral_form input[name=consent]",
            run: "click",
        },
        {
            content: "Send",
            trigger: "form.o_referral_form button.o_referral_submit",
            run: "click",
        },
        {
            content: "Thanked",
            trigger: ".o_referral_link_done",
        },
    ],
});
