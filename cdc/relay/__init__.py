"""The outbox relay: moves committed outbox rows from PostgreSQL to Kafka.

Two sources feed one publishing loop:

- logical (default): decodes committed inserts into the outbox table from a
  logical replication slot (pgoutput, read through the SQL slot functions), in
  commit order, and advances the slot only after Kafka acknowledged them;
- poll: claims unpublished rows by id order, for PostgreSQL servers without
  logical replication.

Either way a crash or a Kafka outage repeats events and never drops them, and
published rows are deleted from the outbox.
"""
