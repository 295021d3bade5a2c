"""Listing losses, miners and regimes (and `rrbench train --help`) stays cheap: no torch import."""

from __future__ import annotations

import subprocess
import sys


def test_listing_training_components_does_not_import_torch():
    code = ("import sys\n"
            "from rrbench.cli.main import main\n"
            "for kind in ('losses', 'miners', 'regimes'):\n"
            "    assert main(['list', kind]) == 0\n"
            "try:\n"
            "    main(['train', '--help'])\n"
            "except SystemExit:\n"
            "    pass\n"
            "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
    for name in ("n3-mixed", "r4-plistmle", "gen-listwise", "lambdaloss", "minilm-scifact"):
        assert name in out.stdout
