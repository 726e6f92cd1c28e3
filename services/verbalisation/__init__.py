"""The verbalisation service."""
