"""Relay settings, read from Django settings with defaults so a deployment sets only what differs."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from django.conf import settings

from commerce.models import OutboxEvent

MODES = ("logical", "poll")

# PostgreSQL accepts only lower-case letters, digits and underscores in slot
# names; publications follow the same rule here so they never need quoting.
_NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,63}$")


@dataclass(frozen=True)
class RelayConfig:
    """Tuning of one relay process; `from_settings` fills it from the CDC_RELAY_* settings."""

    mode: str = "logical"
    slot: str = "commerce_outbox"
    publication: str = "commerce_outbox"
    batch_size: int = 1000
    # Sleep after an empty fetch; bounds the added latency when the outbox is quiet.
    idle_seconds: float = 0.1
    # While no outbox row arrives, the relay writes a heartbeat this often so
    # that the slot can still advance and stop retaining WAL.
    heartbeat_seconds: float = 10.0
    backoff_initial_seconds: float = 0.5
    backoff_max_seconds: float = 30.0
    # How long a stop request waits for Kafka to acknowledge the current batch.
    stop_timeout_seconds: float = 10.0

    @classmethod
    def from_settings(cls, **overrides: Any) -> RelayConfig:
        """Build the config from Django settings, then apply the non-None `overrides` (command-line options)."""
        config = cls(
            mode=getattr(settings, "CDC_RELAY_MODE", cls.mode),
            slot=getattr(settings, "CDC_RELAY_SLOT", cls.slot),
            publication=getattr(settings, "CDC_RELAY_PUBLICATION", cls.publication),
            batch_size=int(getattr(settings, "CDC_RELAY_BATCH_SIZE", cls.batch_size)),
            idle_seconds=float(getattr(settings, "CDC_RELAY_IDLE_SECONDS", cls.idle_seconds)),
            heartbeat_seconds=float(getattr(settings, "CDC_RELAY_HEARTBEAT_SECONDS", cls.heartbeat_seconds)),
            backoff_max_seconds=float(getattr(settings, "CDC_RELAY_BACKOFF_MAX_SECONDS", cls.backoff_max_seconds)),
            stop_timeout_seconds=float(getattr(settings, "CDC_RELAY_STOP_TIMEOUT_SECONDS", cls.stop_timeout_seconds)),
        )
        config = replace(config, **{name: value for name, value in overrides.items() if value is not None})
        config.validate()
        return config

    def validate(self) -> None:
        """Raise ValueError naming the first invalid value."""
        if self.mode not in MODES:
            raise ValueError(f"Invalid relay mode {self.mode!r}; use one of {', '.join(MODES)}.")
        for label, name in (("slot", self.slot), ("publication", self.publication)):
            if not _NAME_PATTERN.match(name):
                raise ValueError(
                    f"Invalid {label} name {name!r}; use 1 to 63 lower-case letters, digits or underscores."
                )
        if self.batch_size < 1:
            raise ValueError(f"Invalid batch size {self.batch_size}; it must be at least 1.")


def logical_lock_name(slot: str) -> str:
    """Name the advisory lock that one logical relay per slot holds."""
    return f"cdc_relay:logical:{slot}"


def poll_lock_name() -> str:
    """Name the advisory lock that one poll relay per database holds."""
    return f"cdc_relay:poll:{OutboxEvent._meta.db_table}"
