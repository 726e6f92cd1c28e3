"""Footage taken out of the retention sweep and handed over: holds, requisition exports, the
right of access (requests and redacted copies), the recorder's provenance chain, and the job
queue that builds the packages."""
