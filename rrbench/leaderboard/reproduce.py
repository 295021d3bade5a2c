"""``rrbench reproduce``: re-run the configuration a result record describes and compare the numbers.

It sits above both writers of records (``rrbench.pipeline.runner`` for runs, ``rrbench.leaderboard.outside_runs`` for evaluated TREC files),
which is why it is not part of ``rrbench.records.record``: the record format module stays below the code that writes it.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from rrbench.components.registry import missing_plugins
from rrbench.leaderboard.outside_runs import evaluate_run
from rrbench.pipeline.runner import RunConfig, execute
from rrbench.records.record import (
    RUN_FILE,
    RecordError,
    compare_fields,
    compare_metrics,
    load_record,
    record_path,
    require_valid,
)


def reproduce(path: str | Path, output: str | Path | None = None, tolerance: float = 1e-9,
              cache_dir: str | None = None, use_cache: bool = True, show_progress: bool | None = None
              ) -> dict[str, Any]:
    """Re-run the configuration a record describes and compare its metrics.

    Returns ``{"record": new record, "comparison": rows, "ok": bool}``. With the score cache the re-run needs no
    model forward pass; without it, scores are recomputed (float noise across hardware may need ``tolerance``).
    """

    file = record_path(path)
    old = load_record(file)
    require_valid(old, str(file))
    manifest = old["manifest"]
    kind = manifest.get("kind", "run")
    with tempfile.TemporaryDirectory(prefix="rrbench-reproduce-") as scratch:
        target = Path(output) if output else Path(scratch) / "out"
        if kind == "evaluate":
            run_file = file.parent / RUN_FILE
            given = manifest.get("run_config") or {}
            new = evaluate_run(task=given.get("task", manifest["task"]["id"]), split=manifest["split"],
                               run=str(run_file), threshold=manifest["threshold"]["value"], output=str(target))
        else:
            config = manifest.get("run_config")
            if not isinstance(config, Mapping):
                raise RecordError(f"{file}: manifest.run_config missing; re-run its command instead: "
                                  f"{manifest.get('command')}")
            missing = missing_plugins(manifest.get("plugins") or {})
            if missing:
                raise RecordError(f"{file}: {missing[0]}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1
                                                             else ""))
            known = {f.name for f in fields(RunConfig)}
            unknown = set(config) - known
            if unknown:
                raise RecordError(f"{file}: manifest.run_config has fields this rrbench does not know: "
                                  f"{', '.join(sorted(unknown))}")
            new = execute(RunConfig(**{**config, "output": str(target), "cache_dir": cache_dir,
                                       "use_cache": use_cache, "show_progress": show_progress}))
    if new["manifest"]["task"]["data_sha256"] != manifest["task"]["data_sha256"]:
        raise RecordError(f"{file}: the task data changed since the record was made (data_sha256 "
                          f"{manifest['task']['data_sha256'][:12]}... now {new['manifest']['task']['data_sha256'][:12]}...)")
    rows = compare_metrics(old["metrics"], new["metrics"], tolerance)
    same_hash = new["manifest"].get("config_hash") == manifest.get("config_hash")
    field_rows = compare_fields(old, new, tolerance)
    return {"record": new, "comparison": rows, "fields": field_rows,
            "ok": all(r["ok"] for r in rows) and all(f["ok"] for f in field_rows if f["decides"]),
            "config_hash_matches": same_hash}
