from . import referral_create_wizard
from . import referral_lost_wizard
from . import referral_wallet_adjust_wizard
from . import referral_wallet_statement_wizard
from . import referral_credit_apply_wizard
from . import partner_followup_campaign_wizard
from . import partner_followup_preview
from . import base_partner_merge_automatic_wizard
