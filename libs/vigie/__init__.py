"""Vigie's shared library, by concern (docs/architecture.md, "The library"); each group imports
only the groups below it (tests/foundation/test_layers.py):

- cli — the `vigie` command;
- local — the embedded default (`vigie run`: local servers, simulated cameras, the demo);
- operations, service — `vigie init`, backups, sizing; the one way every service runs;
- custody, verbalisation — holds, exports, the right of access; tickets from the images;
- records — the registers and records the law asks for;
- media, security, cameras — frames, masks and codecs; accounts, signing keys, secrets; who
  works on which camera, and the cameras a request names;
- plumbing — bus, database, object store, settings, logs, metrics, HTTP, certificates.
"""
