from . import sale_report
from . import referral_statement
from . import referral_sponsor_statement
from . import referral_program_kpi
from . import referral_prospect_kpi
from . import referral_credit_report
from . import referral_credit_reconciliation
