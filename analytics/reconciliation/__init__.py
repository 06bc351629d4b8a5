"""Compare the orders database with the projection and explain every difference.

`reconcile(start=..., end=...)` reads four places in the direction events
flow: the orders, the outbox rows the relay has not published yet, the Kafka
messages beyond the analytics consumer's committed offsets, and last the
projection. An event that moves while the run reads is therefore found in at
least one of them. A difference in an order whose missing events sit in the
outbox or beyond the committed offsets is lag. Any other difference is
unexplained: missing or extra events, a state or amount that disagrees, an
order only the projection knows, or a daily sum that disagrees with the facts.
"""
from analytics.reconciliation.report import Report
from analytics.reconciliation.run import BacklogUnavailable, reconcile

__all__ = ["BacklogUnavailable", "Report", "reconcile"]
