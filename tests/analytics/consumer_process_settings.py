"""Settings of the `run_consumer analytics` subprocess that test_kill.py kills.

A killed member stays in its group until its Kafka session times out, and the
restarted consumer waits for that, so the session is kept short here.
"""
from commerce.settings import *  # noqa: F403

CDC_CONSUMER_KAFKA_CONFIG = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}
CDC_CONSUMER_POLL_TIMEOUT_SECONDS = 0.2
