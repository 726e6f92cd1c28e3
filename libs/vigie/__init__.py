"""Vigie's shared library: contracts (subjects, messages, tables, buckets) and plumbing."""
