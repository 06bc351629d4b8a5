"""Order notifications: one pending Notification row per placed order and per paid order."""
from __future__ import annotations

import uuid

from cdc.consumers.base import EventConsumer, InvalidEvent, Source
from cdc.consumers.registry import register
from cdc.envelope import Envelope
from cdc.models import Notification

KIND_BY_EVENT_TYPE = {
    "order.placed": Notification.Kind.ORDER_PLACED,
    "order.paid": Notification.Kind.ORDER_PAID,
}


@register
class NotificationsConsumer(EventConsumer):
    """Record which order notifications are due; sending them is a separate step that does not exist yet.

    TODO: add a sender that delivers pending rows outside any transaction and
    marks them sent or failed. Event payloads carry no contact details, so it
    must look the customer up from the order.
    """

    name = "notifications"
    aggregate_types = ("order",)
    event_types = frozenset(KIND_BY_EVENT_TYPE)

    def handle(self, envelope: Envelope, source: Source) -> None:
        try:
            order_id = uuid.UUID(str(envelope.payload["order_id"]))
        except (KeyError, ValueError) as error:
            raise InvalidEvent(
                f"{envelope.type} {envelope.event_id} has no valid order_id in its payload: {error!r}."
            ) from error

        # get_or_create: a second event of the same kind for the same order keeps the first row.
        Notification.objects.get_or_create(
            order_id=order_id,
            kind=KIND_BY_EVENT_TYPE[envelope.type],
            defaults={"event_id": envelope.event_id},
        )
