from . import mail_activity_plan_template
from . import referral_program
from . import referral_referral
from . import res_company
from . import res_partner
from . import sale_order
