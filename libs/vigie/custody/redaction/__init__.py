"""Redacted copies for a filmed person's right of access (R22; docs/right-of-access.md): inverse
redaction — everything blurred but the requester's own region —, detectors only to assist."""
