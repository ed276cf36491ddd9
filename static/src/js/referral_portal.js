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

/**
 * The statement shown as a web page (no PDF engine on the server): Print
 * prints the statement alone, not the portal page around it.
 */
publicWidget.registry.ReferralStatementPrint = publicWidget.Widget.extend({
    selector: ".o_referral_statement_no_pdf",
    events: {
        "click .o_referral_statement_print": "_onPrint",
    },

    _onPrint() {
        const frame = document.querySelector(".o_referral_statement_frame");
        if (frame && frame.contentWindow) {
            frame.contentWindow.print();
        }
    },
});
