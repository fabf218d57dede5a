"""Commands in README.md and docs/ run as typed after `make demo`: they use
the virtual environment's Python and TensorBoard, and name real flags."""

from __future__ import annotations

import re

from tfdsmlp import cli

import pytest
from tiny_data import REPO_ROOT

DOCS = [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
# A shell command of ours outside the virtual environment.
BARE = re.compile(r"(^|[\s`(;&|])(python3?|tensorboard|pytest)\s+(-m\s+"
                  r"(tfdsmlp|data_tools|pytest)|--logdir|tests)")


def _code_lines(path):
    """(line number, text) of the lines inside ``` blocks and `spans`."""
    inside = False
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip().startswith("```"):
            inside = not inside
            continue
        if inside:
            yield n, line
        else:
            for span in re.findall(r"`([^`]+)`", line):
                yield n, span


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_commands_use_the_virtual_environment(path):
    bare = [f"{path.name}:{n}: {text.strip()}" for n, text in
            _code_lines(path) if BARE.search(text)]
    assert bare == [], "\n".join(bare)


def test_tfdsmlp_commands_in_docs_name_real_flags():
    parser = cli.build_parser()
    subparsers = next(a for a in parser._actions
                      if a.__class__.__name__ == "_SubParsersAction")
    flags = {name: {o for a in sub._actions for o in a.option_strings}
             for name, sub in subparsers.choices.items()}
    wrong = []
    for path in DOCS:
        text = path.read_text().replace("\\\n", " ")
        for m in re.finditer(r"python -m tfdsmlp ([a-z-]+)([^\n`]*)", text):
            command, rest = m.group(1), m.group(2)
            if command not in flags:
                continue  # e.g. `tfdsmlp.experiments`
            for flag in re.findall(r"(?<![\w-])(--[a-z][a-z-]*)", rest):
                if flag not in flags[command]:
                    wrong.append(f"{path.name}: {command} {flag}")
    assert wrong == [], wrong
