"""Who may do what, and the keys that prove it: personal accounts and their second factor, the
deployment's signing keys, and its secrets as files (the certificate authority that secures the
plumbing's connections is in `vigie.plumbing.certs`)."""
