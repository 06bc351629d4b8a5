"""The `analytics` consumer: order events into the sales projection, in the analytics database only."""
from __future__ import annotations

from analytics.events import SUPPORTED_VERSIONS, UnusableEvent, parse_order_event
from analytics.router import ANALYTICS_DATABASE
from analytics.services import OrderLinesMissing, projection_apply_event, projection_claim_event
from cdc.consumers.base import EventConsumer, InvalidEvent, Source
from cdc.consumers.registry import register
from cdc.envelope import Envelope


@register
class AnalyticsConsumer(EventConsumer):
    """Apply every order event once to the facts and daily tables of the projection.

    The deduplication record (AppliedEvent) lives in the analytics database
    and is written in the projection's transaction, so the order database
    is neither read nor written while events are applied.
    """

    name = "analytics"
    aggregate_types = ("order",)
    event_types = frozenset(SUPPORTED_VERSIONS)
    database = ANALYTICS_DATABASE

    def claim_event(self, envelope: Envelope) -> bool:
        try:
            return projection_claim_event(envelope=envelope)
        except UnusableEvent as error:
            raise InvalidEvent(str(error)) from error

    def handle(self, envelope: Envelope, source: Source) -> None:
        # Neither error can be fixed by retrying now: the event is dead-lettered
        # and applied later by replay_dlq, after the cause is fixed.
        try:
            projection_apply_event(event=parse_order_event(envelope), source=source)
        except (UnusableEvent, OrderLinesMissing) as error:
            raise InvalidEvent(str(error)) from error
