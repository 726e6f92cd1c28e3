"""Requisition exports: signed evidence packages any investigator can play and verify (R17, R18;
docs/exports.md). `package` builds one from a hold's evidence copies, `signing` holds the
deployment's export key, `verify` checks a package with nothing but the package."""
