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


def test_the_readme_python_example_runs_and_shows_what_it_says(tmp_path, monkeypatch):
    # The "Use from Python" block, run as written (from a scratch directory: it writes a run directory).
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("## Use from Python") :]
    code = section[
        section.index("```python") + len("```python") : section.index("```", section.index("```python") + 3)
    ]
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert type(namespace["same"]).__name__ == "RunResult"
    table = namespace["pd"].DataFrame(namespace["rows"])
    low = table[table["margin.maintenance"] == 0.02].sort_values("rng")
    high = table[table["margin.maintenance"] == 0.03].sort_values("rng")
    # The sentence under the block: 7 links deep at 2% on both seeds, 3 and 4 at 3%, no bad debt at 3%.
    assert low["cascade_depth"].tolist() == [7, 7] and high["cascade_depth"].tolist() == [3, 4]
    assert [round(value) for value in low["bad_debt"]] == [196, 283] and (high["bad_debt"] == 0).all()
