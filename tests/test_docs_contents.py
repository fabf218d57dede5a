"""docs/RESULTS.md's Contents table lists every `## ` section, in order,
with a link that reaches it (GitHub's heading anchors)."""

from __future__ import annotations

import re

from tiny_data import REPO_ROOT

RESULTS = REPO_ROOT / "docs" / "RESULTS.md"


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped,
    spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.lower().replace("`", ""))
    return text.replace(" ", "-")


def test_anchor_of_a_heading_with_punctuation():
    assert _anchor("Stage 2's rate, AUC - logloss (issue 19)") == \
        "stage-2s-rate-auc---logloss-issue-19"


def test_results_contents_lists_every_section_in_order():
    text = RESULTS.read_text()
    contents = text.split("## Contents", 1)[1].split("\n## ", 1)[0]
    links = re.findall(r"^\| \[([^\]]+)\]\(#([^)]+)\) \|", contents, re.MULTILINE)
    sections = [h for h in re.findall(r"^## (.+)$", text, re.MULTILINE)
                if h != "Contents"]
    assert [title for title, _ in links] == sections, (
        "docs/RESULTS.md: the Contents table and the ## sections differ; "
        "add or rename the row of the section changed")
    for title, anchor in links:
        assert anchor == _anchor(title), (title, anchor)
