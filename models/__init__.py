# The sub-applications first (their abstract models are inherited by the
# extensions of core models below), then one file per core model extended.
from . import referral
from . import wallet
from . import lifecycle
from . import followup
from . import account_chart_template
from . import account_move
from . import account_move_line
from . import account_tax
from . import base_import_import
from . import mail_activity
from . import mail_activity_plan
from . import mail_activity_plan_template
from . import mail_compose_message
from . import mail_render_mixin
from . import mail_tracking_value
from . import product_template
from . import res_company
from . import res_config_settings
from . import res_partner
from . import sale_order
from . import sale_order_line
from . import utm_source
