"""Old import paths that third-party code used before the stage subpackages: thin forwarding shims.

A shim module holds no code of its own. Its module-level ``__getattr__`` (PEP 562) forwards each name to its new
home and warns with a ``DeprecationWarning`` attributed to the importing module, so pytest's
``error::DeprecationWarning:rrbench`` filter turns any use by rrbench's own code into an error while outsiders only
see the warning. The shims go away in rrbench 0.3.
"""

from __future__ import annotations

import importlib
import warnings
from collections.abc import Callable, Mapping
from typing import Any

REMOVED_IN = "0.3"


def forwarding(old_module: str, default_target: str,
               names: Mapping[str, str] | None = None) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a shim at ``old_module``.

    ``names`` maps an old name to ``"new.module:new_name"`` (or ``"new.module"`` when the name is unchanged); any
    other public name is looked up in ``default_target``.
    """
    table = dict(names or {})

    def target_of(name: str) -> tuple[str, str]:
        module, _, attr = table.get(name, default_target).partition(":")
        return module, attr or name

    def __getattr__(name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        module, attr = target_of(name)
        value = getattr(importlib.import_module(module), attr)
        warnings.warn(f"{old_module}.{name} is deprecated and will be removed in rrbench {REMOVED_IN}: use "
                      f"{module}.{attr}" + (" (every plugin-facing name is in rrbench.plugin)"
                                            if module != "rrbench.plugin" else ""),
                      DeprecationWarning, stacklevel=2)
        return value

    def __dir__() -> list[str]:
        public = [n for n in dir(importlib.import_module(default_target)) if not n.startswith("_")]
        return sorted(set(public) | set(table))

    return __getattr__, __dir__
