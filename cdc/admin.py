"""Read-only Django admin for what the consumers wrote; only consumers write these tables."""
from django.contrib import admin

from cdc.models import AuditEntry, Notification, ProcessedEvent


class ReadOnlyAdmin(admin.ModelAdmin):
    # An edited row would disagree with the events it came from, and replays would not repair it.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ProcessedEvent)
class ProcessedEventAdmin(ReadOnlyAdmin):
    list_display = ["consumer", "event_type", "event_id", "processed_at"]
    list_filter = ["consumer", "event_type"]
    search_fields = ["event_id"]


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdmin):
    list_display = ["order_id", "kind", "status", "created_at"]
    list_filter = ["kind", "status"]
    search_fields = ["order_id", "event_id"]


@admin.register(AuditEntry)
class AuditEntryAdmin(ReadOnlyAdmin):
    list_display = ["occurred_at", "event_type", "aggregate_type", "aggregate_id", "aggregate_version"]
    list_filter = ["event_type", "aggregate_type"]
    search_fields = ["aggregate_id", "event_id"]
    date_hierarchy = "occurred_at"
