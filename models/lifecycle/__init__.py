from . import partner_lifecycle_stage
from . import partner_lifecycle_history
from . import partner_lifecycle_queue
from . import partner_lifecycle_engine
