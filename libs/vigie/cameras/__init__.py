"""Which replica works on which camera (issue 19): claims, epochs, replicas, the per-camera runtime."""
