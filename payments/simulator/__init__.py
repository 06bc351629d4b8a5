"""A stand-alone payment provider simulator with a Stripe-like JSON API.

It runs as its own process (``python -m payments.simulator``) and simulates
the outside world: payment intents, captures, refunds, signed webhooks, and
faults that can be switched on at runtime. It must not import Django.
docs/payment-simulator.md describes the API and the fault switches.
"""
