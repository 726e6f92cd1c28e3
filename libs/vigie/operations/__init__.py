"""What the operators run around the services: `vigie init` (provision), backups, and sizing a
deployment from measured costs."""
