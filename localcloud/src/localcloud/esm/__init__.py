"""Lambda event source mappings for Kinesis and DynamoDB Streams, driven locally with AWS semantics.

See README.md in this package for the behaviours and the choices made where AWS is silent.
"""

from .config import MappingConfig
from .engine import MappingEngine
from .filters import EventPattern, PatternError, RecordFilter
from .settings import Clock, EngineSettings, SystemClock
from .stats import ShardStats

__all__ = [
    "Clock",
    "EngineSettings",
    "EventPattern",
    "MappingConfig",
    "MappingEngine",
    "PatternError",
    "RecordFilter",
    "ShardStats",
    "SystemClock",
]
