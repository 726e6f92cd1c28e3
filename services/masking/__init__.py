"""The masking service."""
