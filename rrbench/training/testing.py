"""Deprecated import path, kept for plugin tests written before rrbench 0.2: use ``rrbench.testing``.

Every name is forwarded there with a ``DeprecationWarning`` (see :mod:`rrbench.util.deprecation`).
"""

from rrbench.util.deprecation import forwarding

__getattr__, __dir__ = forwarding("rrbench.training.testing", "rrbench.testing")
