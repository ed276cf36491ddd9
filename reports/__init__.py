from . import sale_report
from . import referral_statement
