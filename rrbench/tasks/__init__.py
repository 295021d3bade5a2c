"""Tasks: the spec format (``spec``), loading (``loader``), splits, and ``resolve.get_task``, which finds a
registered id or a task folder.

This package's ``__init__`` imports nothing (see :mod:`rrbench.models`)."""
