"""Local AWS IoT Core: an MQTT broker (TCP and WebSocket), the data-plane endpoint, topic rules.

See ``localcloud/iot/README.md``.
"""

from localcloud.iot.actions import ActionError, ActionServices, RuleAction, build_action
from localcloud.iot.broker import BrokerStartError, MqttBroker, RetainedMessage
from localcloud.iot.dataplane import DataPlaneServer
from localcloud.iot.local import DATA_PLANE_ENDPOINT_ENV, HANDLED_BY, TOPIC_RULE_TYPE, LocalIot
from localcloud.iot.messages import UNDEFINED, IotMessage
from localcloud.iot.rules import (
    ActionFailure,
    FailedMessage,
    RuleConfigError,
    RuleEngine,
    RuleInfo,
    RuleStats,
    TopicRule,
    error_message,
)
from localcloud.iot.sql import EvalContext, Query, SqlError, parse_expression, parse_sql
from localcloud.iot.templates import SubstitutionTemplate
from localcloud.iot.topics import InvalidTopicError, topic_matches

__all__ = [
    "DATA_PLANE_ENDPOINT_ENV",
    "HANDLED_BY",
    "TOPIC_RULE_TYPE",
    "UNDEFINED",
    "ActionError",
    "ActionFailure",
    "ActionServices",
    "BrokerStartError",
    "DataPlaneServer",
    "EvalContext",
    "FailedMessage",
    "InvalidTopicError",
    "IotMessage",
    "LocalIot",
    "MqttBroker",
    "Query",
    "RetainedMessage",
    "RuleAction",
    "RuleConfigError",
    "RuleEngine",
    "RuleInfo",
    "RuleStats",
    "SqlError",
    "SubstitutionTemplate",
    "TopicRule",
    "build_action",
    "error_message",
    "parse_expression",
    "parse_sql",
    "topic_matches",
]
