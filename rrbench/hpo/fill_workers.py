"""One fill worker per device: ``rrbench sweep fill --devices cuda:0,cuda:1`` (or ``auto``), ``--workers N`` on CPU.

A machine with several GPUs runs one worker process per GPU, each with its own copy of the model, all sharing the
store's fill queue; that is the same as starting ``rrbench sweep fill --device cuda:i`` by hand once per GPU, which
is what this does. On CPU, ``--workers N`` starts N processes and splits the machine's cores between them (each
process gets ``cores // N`` threads), so N workers never oversubscribe the cores that one worker with all threads
would use. Workers are plain subprocesses of the same command: on other machines, start the same command there.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rrbench.util.errors import UsageError


@dataclass(frozen=True)
class WorkerPlan:
    """One worker process: its device (None: CPU), its thread count and its name in messages."""

    name: str
    device: str | None
    threads: int


def cpu_cores() -> int:
    """Cores this process may run on (the affinity mask, which containers and ``taskset`` narrow)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def resolve_devices(devices: str | None) -> list[str]:
    """``cuda:0,cuda:1`` as a list; ``auto``: every CUDA device torch sees (refused when there is none)."""
    if devices is None:
        return []
    if devices.strip().lower() == "auto":
        import torch  # lazy: counting GPUs needs torch, which the CLI imports only when a command needs it

        count = torch.cuda.device_count()
        if count == 0:
            raise UsageError("--devices auto: no CUDA device is visible; on CPU use --workers N")
        return [f"cuda:{i}" for i in range(count)]
    names = [d.strip() for d in devices.split(",") if d.strip()]
    if not names:
        raise UsageError(f"--devices {devices!r} names no device; use cuda:0,cuda:1,... or auto")
    if len(set(names)) != len(names):
        raise UsageError(f"--devices {devices!r} names a device twice")
    return names


def plan_workers(workers: int, devices: Sequence[str], threads: int | None, cores: int) -> list[WorkerPlan]:
    """One plan per worker process: one per device when devices are given, else ``workers`` CPU workers."""
    if workers < 1:
        raise UsageError(f"--workers must be >= 1, got {workers}")
    if devices and workers not in (1, len(devices)):
        raise UsageError(f"--workers {workers} and --devices {','.join(devices)} disagree: one worker runs per device")
    count = len(devices) or workers
    per_worker = threads if threads is not None else max(1, cores // count)
    if per_worker < 1:
        raise UsageError(f"--threads must be >= 1, got {per_worker}")
    if devices:
        return [WorkerPlan(f"worker {i} ({d})", d, per_worker) for i, d in enumerate(devices)]
    return [WorkerPlan(f"worker {i}", None, per_worker) for i in range(count)]


def run_workers(plans: Sequence[WorkerPlan], argv: Sequence[str], echo: bool = True) -> int:
    """Start ``python -m rrbench.cli *argv`` once per plan (with ``--device`` and ``--threads``), wait for all of
    them, echo each one's output under its name; returns 0, or the exit code of the first worker that failed."""
    children = []
    for plan in plans:
        command = [sys.executable, "-m", "rrbench.cli", *argv, "--threads", str(plan.threads)]
        if plan.device is not None:
            command += ["--device", plan.device]
        env = {**os.environ, "OMP_NUM_THREADS": str(plan.threads), "TOKENIZERS_PARALLELISM": "false"}
        children.append((plan, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                text=True, env=env)))
    failed = 0
    for plan, child in children:
        output, _ = child.communicate()
        if echo:
            for line in output.splitlines():
                print(f"[{plan.name}] {line}", flush=True)
        if child.returncode and not failed:
            failed = child.returncode
    return failed
