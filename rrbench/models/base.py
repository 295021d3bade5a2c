"""Deprecated import path, kept for third-party code written before rrbench 0.2: use ``rrbench.plugin`` (``PairwiseReranker`` is now ``PointwiseReranker``).

Every name is forwarded there with a ``DeprecationWarning`` (see :mod:`rrbench.util.deprecation`).
"""

from rrbench.util.deprecation import forwarding

__getattr__, __dir__ = forwarding("rrbench.models.base", "rrbench.plugin",
                                 {"PairwiseReranker": "rrbench.plugin:PointwiseReranker"})
