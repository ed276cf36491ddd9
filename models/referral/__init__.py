from . import referral_program
from . import referral_lost_reason
from . import referral_portal_attempt
from . import referral_notification
from . import referral_retired_code
from . import referral_referral
