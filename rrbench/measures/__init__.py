"""Measures over rankings and decisions: metrics on padded arrays, the metric-name table, TREC files and paired
significance tests. Imports only ``rrbench.util`` and ``rrbench.components``."""
