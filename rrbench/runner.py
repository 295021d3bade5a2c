"""Deprecated import path, kept for third-party code written before rrbench 0.2: use ``rrbench.pipeline.runner``.

Every name is forwarded there with a ``DeprecationWarning`` (see :mod:`rrbench.util.deprecation`).
"""

from rrbench.util.deprecation import forwarding

__getattr__, __dir__ = forwarding("rrbench.runner", "rrbench.pipeline.runner")
