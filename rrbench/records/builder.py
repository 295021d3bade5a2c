"""The one place that writes result records and computes configuration hashes.

Why a single builder: ``rrbench run``, ``rrbench evaluate`` and the sweep all produce records, and a leaderboard can
only trust a record whose shape and hash follow one rule. Two hand-written dict literals drifted apart before, so
every producer now passes its parts here and gets the record back.

Hash stability: the configuration hash is the sha256 of ``manifest.config``. New options enter that dict only when
they are set (:func:`with_optional`), so adding an option never changes the hash of a configuration that does not use
it, and records published before the option existed keep their identity.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Mapping
from typing import Any

from rrbench import __version__
from rrbench.components.registry import component_plugins
from rrbench.records.manifest import hardware, package_versions
from rrbench.util.io import canonical_hash

#: Version of the record format. Readers refuse records from a newer schema.
SCHEMA_VERSION = 1

METRIC_NOTES = ("rank metrics (nDCG@10, RR@10, R@k) average over has-evidence queries; "
                "false_evidence_rate over no-evidence queries")


def task_identity(task: Any) -> dict[str, Any]:
    """What pins a task's data: id, version and the hash of its files (part of every configuration hash)."""
    return {"id": task.id, "version": task.version, "data_sha256": task.data_sha256}


def with_optional(config: dict[str, Any], **optional: Any) -> dict[str, Any]:
    """Add each keyword to ``config`` only when it is set: not None, not False, not an empty string or container.

    Callers pass ``None`` for an option left at its default, so that the key (and the hash) stays absent.
    """
    for key, value in optional.items():
        if value is None or value is False:
            continue
        if isinstance(value, (dict, list, tuple, str)) and not value:
            continue
        config[key] = value
    return config


def config_hash(config: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of a configuration (sorted keys): the identity of a result."""
    return canonical_hash(dict(config))


def build_record(*, task: Any, split: str, metrics: Mapping[str, Any], per_query: Mapping[str, Any],
                 config: Mapping[str, Any], components: Mapping[str, Any], command: str,
                 manifest: Mapping[str, Any] | None = None, kind: str = "run",
                 metric_notes: str = METRIC_NOTES) -> dict[str, Any]:
    """Assemble a record. ``config`` is what is hashed; ``manifest`` holds everything else worth keeping.

    ``kind`` is ``run`` (rrbench scored it) or ``evaluate`` (an outside run file); only non-``run`` kinds are written,
    so records of both kinds read the same as before this builder existed.
    """

    body: dict[str, Any] = {
        "rrbench_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if kind != "run":
        body["kind"] = kind
    body.update({
        "task": {**task_identity(task), "scope": task.spec.scope, "main_score": task.spec.main_score},
        "split": split,
        "components": dict(components),
    })
    extra = dict(manifest or {})
    body.update({k: v for k, v in extra.items() if k not in ("packages", "hardware")})
    plugins = component_plugins(components)
    if plugins:  # who provided each component, so a record names the third-party packages it needs
        body["plugins"] = plugins
    body.update({
        "metric_notes": metric_notes,
        "config": dict(config),
        "config_hash": config_hash(config),
        "packages": extra.get("packages") or {**package_versions(), **plugin_packages(plugins)},
        "hardware": extra.get("hardware") or hardware(),
        "command": command,
    })
    return {"schema_version": SCHEMA_VERSION, "metrics": dict(metrics), "per_query": dict(per_query),
            "manifest": body}


def plugin_packages(plugins: Mapping[str, Any]) -> dict[str, str]:
    """Distribution versions of the plugins a record used, added to ``manifest.packages``."""
    out: dict[str, str] = {}
    for value in plugins.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, dict) and item.get("distribution") and item.get("version"):
                out[item["distribution"]] = item["version"]
    return out
