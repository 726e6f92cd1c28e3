"""The viewer-gateway service."""
