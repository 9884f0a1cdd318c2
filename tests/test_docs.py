"""The documentation stands alone: nothing points outside the repository, and every relative link resolves."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Files the repository must not send readers to: they are not in it.
OUTSIDE = re.compile(r"REFERENCES\.md|DESIGN\.md|/work/|\.\./shared/|shared/(?:DESIGN|REFERENCES)")


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [
        ROOT / name
        for name in listed.splitlines()
        if name.endswith((".py", ".md", ".yaml", ".toml", ".cfg", ".txt", ".cff")) or name.startswith(".ci/")
    ]


def test_nothing_points_outside_the_repository():
    offenders = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _tracked_text_files()
        if path.is_file() and path.name != "test_docs.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert offenders == []


def test_relative_links_in_the_docs_resolve():
    broken = []
    for path in [ROOT / "README.md", ROOT / "outputs" / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
            if not re.match(r"[a-z]+://", target) and not (path.parent / target).exists():
                broken.append(f"{path.relative_to(ROOT)} -> {target}")
    assert broken == []


def test_the_liquidation_designs_page_lists_every_design():
    from abm.config import LIQUIDATION_DESIGNS

    text = (Path(__file__).parents[1] / "docs" / "liquidation.md").read_text(encoding="utf-8")
    table = text.split("| design | what it does |", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"^\| `(\w+)`", table, flags=re.MULTILINE)
    assert names == list(LIQUIDATION_DESIGNS)
