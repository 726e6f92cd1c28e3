"""The NATS JetStream bus: one module per subject family (frames, events), streams, consumers."""
