"""Datasets: loading with aliases and stable ids, the Spider layout, the clean-split guard, the embedded demo dataset."""
