from . import referral_wallet
from . import referral_wallet_transaction
from . import referral_wallet_allocation
from . import referral_ledger
from . import referral_credit_mixin
