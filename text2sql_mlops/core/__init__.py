"""Foundations every stage shares: the one user-facing error, safe file output, flag spelling, the records between stages."""
