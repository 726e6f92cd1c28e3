"""The `vigie` command."""
