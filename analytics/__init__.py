"""Sales projection in its own database, fed by order events and reconciled against the orders database.

Only the `analytics` consumer writes it, and only the staff reports API and
the reconciliation read it. docs/analytics.md describes the tables, the
definition of a committed order and the operating commands.
"""
