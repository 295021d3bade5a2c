"""Candidate generators (first stage) and their fusion; ``factory.load_retriever`` builds one by name.

This package's ``__init__`` imports nothing (see :mod:`rrbench.models`)."""
