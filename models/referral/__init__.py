from . import referral_program
from . import referral_lost_reason
from . import referral_portal_attempt
from . import referral_notification
from . import referral_referral
from . import referral_code_alias
