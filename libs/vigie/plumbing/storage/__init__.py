"""Object storage (MinIO or any S3): buckets recordings, evidence, exports."""
