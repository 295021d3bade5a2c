"""Deprecated import path, kept for third-party code written before rrbench 0.2: use ``rrbench.retrievers.fusion`` (the base class: ``rrbench.plugin.Fuser``).

Every name is forwarded there with a ``DeprecationWarning`` (see :mod:`rrbench.util.deprecation`).
"""

from rrbench.util.deprecation import forwarding

__getattr__, __dir__ = forwarding("rrbench.fusion", "rrbench.retrievers.fusion", {"Fuser": "rrbench.plugin", "competition_ranks": "rrbench.plugin"})
