from . import test_referral_rules
from . import test_referee_matching
from . import test_referral_routing
from . import test_sale_order_referral
from . import test_partner_referral_code
from . import test_referral_access
from . import test_referral_tour
from . import test_partner_lifecycle
