"""Plumbing every service stands on: the bus (NATS JetStream), the database (PostgreSQL), the
object store (S3), settings, logs, metrics, the HTTP side of a service, the clock's checks, and
the names of the services. Nothing here knows what a camera, a hold or a register is."""
