# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl).
"""The mass-mail composer's batches, as the follow-up engine sends a template
to hundreds of contacts: with ``composer_batch_size`` in the context, the
composer renders and creates the emails in batches of that size instead of
its 50 (each batch renders the template's fields and compiles its body, then
flushes and empties the whole cache, the run's records with it). A
``mail.batch_size`` system parameter, when set, still prevails, as in Odoo.
The emails are the same (a test compares them with the composer's own)."""

from odoo import models

# The context key that gives the size.
COMPOSER_BATCH_SIZE = "composer_batch_size"


class MailComposeMessage(models.TransientModel):
    _inherit = "mail.compose.message"

    @property
    def _batch_size(self):
        return self.env.context.get(COMPOSER_BATCH_SIZE) or super()._batch_size
