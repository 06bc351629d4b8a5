"""Kafka consumers of outbox events and the framework that runs them.

`base` defines what a consumer declares. `processing` applies one message
with deduplication, retries and dead letters. `runner` is the live
consumer-group loop behind `run_consumer`, and `replay` re-reads the
dead-letter topics or a time range with the same processing.
"""
