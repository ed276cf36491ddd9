/** @odoo-module **/

import publicWidget from "@web/legacy/js/public/public_widget";
import {_t} from "@web/core/l10n/translation";

publicWidget.registry.ReferralCopyLink = publicWidget.Widget.extend({
    selector: ".o_referral_share",
    events: {
        "click .o_referral_copy": "_onCopy",
    },

    async _onCopy(ev) {
        const button = ev.currentTarget;
        const input = this.el.querySelector(".o_referral_share_url");
        try {
            await navigator.clipboard.writeText(button.dataset.clipboardText);
        } catch {
            input.select();
        }
        button.textContent = _t("Copied");
    },
});
