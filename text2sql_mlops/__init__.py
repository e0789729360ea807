"""Execution-guided Text-to-SQL post-training on Spider."""
__version__ = "0.1.0"
