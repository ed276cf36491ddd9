/** @odoo-module **/

import {registry} from "@web/core/registry";

registry.category("web_tour.tours").add("sale_referral_lifecycle_portal_refer", {
    url: "/my/referrals",
    steps: () => [
        {
            content: "The sponsor's referral link is shown",
            trigger: ".o_referral_share .o_referral_share_url",
        },
        {
            content: "Type the company",
            trigger: "form.o_referral_form input[name=company_name]",
            run: "edit Tour Portal Prospect",
        },
        {
            content: "Type the contact",
            trigger: "form.o_referral_form input[name=contact_name]",
            run: "edit Tina Portal",
        },
        {
            content: "Type a wrong email",
            trigger: "form.o_referral_form input[name=email]",
            run: "edit not-an-email",
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
            content: "The error is next to the email field, the values are kept",
            trigger:
                "input[name=email].is-invalid + .invalid-feedback:contains(not valid)",
        },
        {
            content: "The company typed is still there",
            trigger: "input[name=company_name]:value(Tour Portal Prospect)",
        },
        {
            content: "Fix the email",
            trigger: "form.o_referral_form input[name=email]",
            run: "edit tina@tour-portal-prospect.example.com",
        },
        {
            content: "Send again",
            trigger: "form.o_referral_form button.o_referral_submit",
            run: "click",
        },
        {
            content: "Thanked, on the referral's page",
            trigger: ".alert-success:contains(Thank you)",
        },
        {
            content: "Back to the list of referrals",
            trigger: ".breadcrumb a[href='/my/referrals']",
            run: "click",
        },
        {
            content: "The referral is listed",
            trigger: ".o_referral_row:contains(Tour Portal Prospect)",
        },
    ],
});
