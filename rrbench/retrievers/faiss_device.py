"""Put a faiss index on the GPU when the run is on one and the GPU build of faiss is installed.

``pip install 'rrbench[gpu]'`` installs ``faiss-gpu-cu12``; without it (or for an index type faiss cannot move, such
as HNSW), search stays on faiss-cpu and rrbench says so in one line, once per process. Results are the same either
way for exact (``Flat``) indexes; only the speed changes.
"""

from __future__ import annotations

import sys
from typing import Any

_said: set[str] = set()


def _say(message: str) -> None:
    if message not in _said:
        _said.add(message)
        print(f"rrbench: {message}", file=sys.stderr)


def faiss_on_device(index: Any, device: str) -> tuple[Any, str]:
    """``(index, "gpu" | "cpu")``: the index moved to ``device`` when it is a CUDA device and faiss can, else as is."""
    if not str(device).startswith("cuda"):
        return index, "cpu"
    import faiss  # lazy: dense retrieval only

    if not hasattr(faiss, "StandardGpuResources") or faiss.get_num_gpus() < 1:
        _say("faiss-gpu is not installed (pip install 'rrbench[gpu]'): dense search runs on faiss-cpu")
        return index, "cpu"
    gpu = int(str(device).partition(":")[2] or 0)
    try:
        return faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), gpu, index), "gpu"
    except Exception as exc:
        _say(f"faiss cannot move this index to the GPU ({str(exc).splitlines()[0][:120]}): dense search runs on "
             f"faiss-cpu")
        return index, "cpu"
