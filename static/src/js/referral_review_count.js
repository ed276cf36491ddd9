/** @odoo-module **/

import {registry} from "@web/core/registry";

const TO_REVIEW_MENU = "sale_referral_lifecycle.menu_referral_referral_to_review";

/**
 * Shows how many referrals wait for a review in the name of the menu
 * Sales > Referrals > To Review (only Sales administrators see that menu),
 * counted once when the web client starts.
 */
export const referralReviewCountService = {
    dependencies: ["menu", "orm"],
    async start(env, {menu, orm}) {
        const item = menu.getAll().find((m) => m.xmlid === TO_REVIEW_MENU);
        if (!item) {
            return;
        }
        const count = await orm.searchCount("referral.referral", [
            ["state", "=", "to_review"],
        ]);
        if (count) {
            item.name = `${item.name} (${count})`;
        }
    },
};

registry
    .category("services")
    .add("sale_referral_lifecycle_review_count", referralReviewCountService);
