"""STYLE rule 1 as a test: .ci/style.py finds no long function, module or layer factory."""
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_style_limits_hold():
    run = subprocess.run([sys.executable, str(ROOT / ".ci" / "style.py"), str(ROOT / "fnn")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
