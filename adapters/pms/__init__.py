"""PMS2.0 adapter: change capture from the production management database by table polling."""

from adapters.pms.source import PmsSource, create_pms_engine
from adapters.pms.state import settled

__all__ = ["PmsSource", "create_pms_engine", "settled"]
