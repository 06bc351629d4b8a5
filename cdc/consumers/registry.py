"""Map consumer names, as given to the management commands, to consumer classes."""
from __future__ import annotations

from importlib import import_module

from cdc.consumers.base import EventConsumer

# Modules whose import registers the consumers that ship with the project.
BUILTIN_MODULES = ("cdc.consumers.notifications", "cdc.consumers.audit")

_consumers: dict[str, type[EventConsumer]] = {}


class UnknownConsumer(LookupError):
    """Raised for a consumer name that no registered class has."""


def register(consumer_class: type[EventConsumer]) -> type[EventConsumer]:
    """Register a consumer class under its `name`; usable as a class decorator.

    Raises ValueError when another class already uses the name, because two
    consumers sharing a group id would split each other's partitions.
    """
    name = consumer_class.name
    existing = _consumers.get(name)
    # A module imported twice (e.g. by a test runner) registers an equal class again.
    if existing is not None and _qualified_name(existing) != _qualified_name(consumer_class):
        raise ValueError(
            f"Consumer name {name!r} is already registered by {_qualified_name(existing)}; "
            f"choose another name for {_qualified_name(consumer_class)}."
        )
    _consumers[name] = consumer_class
    return consumer_class


def consumer_names() -> list[str]:
    _load_builtins()
    return sorted(_consumers)


def get_consumer(name: str) -> EventConsumer:
    """Instantiate the consumer registered as `name`; raises UnknownConsumer with the valid names."""
    _load_builtins()
    try:
        consumer_class = _consumers[name]
    except KeyError:
        known = ", ".join(sorted(_consumers)) or "none"
        raise UnknownConsumer(f"Unknown consumer {name!r}. Registered consumers: {known}.") from None
    return consumer_class()


def _load_builtins() -> None:
    for module in BUILTIN_MODULES:
        import_module(module)


def _qualified_name(consumer_class: type) -> str:
    return f"{consumer_class.__module__}.{consumer_class.__qualname__}"
