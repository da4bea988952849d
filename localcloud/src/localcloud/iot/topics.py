"""MQTT topic names and topic filters: validation and matching (MQTT 3.1.1 section 4.7)."""

from __future__ import annotations

# AWS IoT Core caps topic names at 256 UTF-8 bytes.
MAX_TOPIC_BYTES = 256


class InvalidTopicError(ValueError):
    """A topic name or topic filter that MQTT (or AWS IoT Core) does not accept."""


def validate_topic(topic: str) -> None:
    """Raise :class:`InvalidTopicError` unless ``topic`` is a valid topic name to publish to."""
    if not topic:
        raise InvalidTopicError("the topic name is empty")
    if "+" in topic or "#" in topic:
        raise InvalidTopicError(f"wildcards are not allowed in a topic name: {topic!r}")
    if "\x00" in topic:
        raise InvalidTopicError("the topic name contains a NUL character")
    if len(topic.encode()) > MAX_TOPIC_BYTES:
        raise InvalidTopicError(f"the topic name is longer than {MAX_TOPIC_BYTES} bytes")


def validate_filter(topic_filter: str) -> None:
    """Raise :class:`InvalidTopicError` unless ``topic_filter`` is a valid subscription filter."""
    if not topic_filter:
        raise InvalidTopicError("the topic filter is empty")
    levels = topic_filter.split("/")
    for index, level in enumerate(levels):
        if "#" in level and (level != "#" or index != len(levels) - 1):
            raise InvalidTopicError(f"'#' must be a whole last level: {topic_filter!r}")
        if "+" in level and level != "+":
            raise InvalidTopicError(f"'+' must be a whole level: {topic_filter!r}")


def topic_matches(topic_filter: str, topic: str) -> bool:
    """True when the topic name ``topic`` matches ``topic_filter`` (with ``+`` and ``#`` wildcards)."""
    # Wildcards in the first level never match topics starting with '$' (MQTT-4.7.2-1),
    # so a catch-all '#' does not see '$aws/...' reserved topics.
    if topic.startswith("$") and topic_filter[:1] in ("+", "#"):
        return False
    filter_levels = topic_filter.split("/")
    topic_levels = topic.split("/")
    for index, level in enumerate(filter_levels):
        if level == "#":
            # 'a/#' also matches 'a' itself.
            return True
        if index >= len(topic_levels):
            return False
        if level not in ("+", topic_levels[index]):
            return False
    return len(filter_levels) == len(topic_levels)


def topic_level(topic: str, index: int) -> str | None:
    """The ``index``-th level of ``topic``, counting from 1 as IoT SQL's ``topic(N)`` does."""
    levels = topic.split("/")
    if 1 <= index <= len(levels):
        return levels[index - 1]
    return None
