"""What the commune must keep and show: the register of accesses and operations (the audit
register), the register of recordings, the public register, the record of processing, the
prefectoral authorisations and their purposes, the road signs, personal-data breaches, the
communes themselves and the legal time their documents are written in."""
