from . import partner_followup_rule
from . import partner_followup_step
from . import partner_followup_log
from . import partner_followup_signal
from . import partner_followup_engine
