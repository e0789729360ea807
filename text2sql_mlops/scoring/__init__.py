"""Execution accuracy with the official Spider semantics, Spider hardness, and the error taxonomy of a query's run."""
