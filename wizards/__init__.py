from . import referral_create_wizard
