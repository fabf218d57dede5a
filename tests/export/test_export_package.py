"""`tfdsmlp.export` holds the export and nothing else: it imports neither
`data_tools` nor the checking tools (`tfdsmlp.servecheck`: serve-check,
the raw-row reader, the TF Serving emulator)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys

import tfdsmlp
from tfdsmlp.export import saved_model
from tfdsmlp.predict import METADATA_FILE

EXPORT_DIR = os.path.join(os.path.dirname(tfdsmlp.__file__), "export")
FORBIDDEN = ("data_tools", "tfdsmlp.servecheck")


def _imports(path):
    with open(path, encoding="utf-8") as f:
        tree = ast.parse(f.read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_export_modules_import_no_checking_tool():
    found = {}
    for name in sorted(os.listdir(EXPORT_DIR)):
        if name.endswith(".py"):
            bad = [m for m in _imports(os.path.join(EXPORT_DIR, name))
                   if m.startswith(FORBIDDEN)]
            if bad:
                found[name] = bad
    assert found == {}


def test_importing_the_export_loads_no_checking_tool():
    code = ("import sys, tfdsmlp.export, tfdsmlp.export.saved_model, "
            "tfdsmlp.export.raw_features, tfdsmlp.export.serving_requests; "
            "print(sorted(m for m in sys.modules if m.startswith("
            f"{FORBIDDEN!r})))")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, env=env, check=True, timeout=300)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_predict_reads_the_export_metadata_file():
    assert METADATA_FILE == saved_model.METADATA_FILE
