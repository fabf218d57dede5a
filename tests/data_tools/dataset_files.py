"""Helpers of the data_tools tests: a dataset directory's files as bytes.

Import from here (`from dataset_files import ...`), not from conftest.
"""

from __future__ import annotations

import json
import os


def read_tree(out) -> dict[str, bytes]:
    """Relative path -> bytes of every file under `out`."""
    files = {}
    for root, _dirs, names in os.walk(out):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                files[os.path.relpath(path, out)] = f.read()
    return files


def without_sources(tree: dict[str, bytes]) -> tuple[dict, list]:
    """(the tree with dataset.json's "sources" taken out, the sources)."""
    meta = json.loads(tree["dataset.json"])
    sources = meta.pop("sources")
    return {**tree, "dataset.json": json.dumps(meta).encode()}, sources
