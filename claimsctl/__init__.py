"""claimsctl: the command line and embedded stack of the claims data platform."""
