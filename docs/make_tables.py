"""Generate the column reference of the output tables from their one declaration (abm/tables.py).

Usage::

    python docs/make_tables.py           # rewrite docs/tables.md and the lists in both READMEs
    python docs/make_tables.py --check   # exit 1 when any of them is out of date

Each generated part sits between ``<!-- tables:start -->`` and ``<!-- tables:end -->`` markers (the whole
of docs/tables.md below its title); the rest of each file is written by hand.
``tests/test_tables.py`` runs the check.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from abm.tables import TABLES, Table  # noqa: E402

START = "<!-- tables:start -->"
END = "<!-- tables:end -->"
TABLES_DOC = ROOT / "docs" / "tables.md"
README = ROOT / "README.md"
OUTPUTS_README = ROOT / "outputs" / "README.md"

_OTHER_FILES = (
    ("manifest.json", "resolved scenario, its hash, seed, versions, git commit, command, times, file hashes"),
    (
        "summary.json",
        "headline figures: liquidations, liquidated_notional, max_drawdown, cascade_depth, "
        "cascade_max_rounds, bad_debt, insurance_fund_min, ... (amplification with --counterfactual)",
    ),
)
_GRAPHS_AND_FIGURES = (
    (
        "cascade.graphml",
        "with --graphml: the liquidation cascade DAG (nodes: liquidations; edges: from cause to effect; "
        "without it, the edges are liquidations.parents)",
    ),
    (
        "trades.graphml",
        "with --graphml: the trade network (accounts; taker -> maker edges with notional and lots; "
        "rebuilt from the tables without it)",
    ),
    ("figures/*.png", "price and liquidations; margin rates and insurance fund; leverage; stress figures"),
    ("report.html", "the run's self-contained report (unless --no-report)"),
)


def _column_list(table: Table) -> str:
    names = ", ".join(table.names())
    if table.pattern is not None:
        names += f", {table.pattern[0]}"
    return names


def tables_reference() -> str:
    """The body of docs/tables.md: one section per table, one row per column."""
    parts = []
    for table in TABLES.values():
        optional = " Written when the model recorded it." if table.optional else ""
        parts.append(f"## `{table.name}`\n\nOne row per {table.row}.{optional}\n")
        parts.append("| column | type | unit | meaning |\n| --- | --- | --- | --- |")
        for column in table.columns:
            parts.append(f"| `{column.name}` | {column.dtype} | {column.unit} | {column.doc} |")
        if table.pattern is not None:
            rule, dtype, doc = table.pattern
            parts.append(f"| `{rule}` | {dtype} |  | {doc} |")
        parts.append("")
    return "\n".join(parts)


def run_directory_block() -> str:
    """The README's listing of a run directory, every table's columns in full."""
    width = 27
    lines = ["```", "outputs/spiral-7-1a2b3c4d/"]

    def entry(name: str, text: str) -> None:
        wrapped = textwrap.wrap(text, width=108 - width - 2) or [""]
        lines.append(f"  {name:<{width}}{wrapped[0]}")
        lines.extend(f"  {'':<{width}}{more}" for more in wrapped[1:])

    for name, text in _OTHER_FILES:
        entry(name, text)
    for table in TABLES.values():
        entry(f"{table.name}.parquet", f"one row per {table.row}: {_column_list(table)}")
    for name, text in _GRAPHS_AND_FIGURES:
        entry(name, text)
    lines.append("```")
    return "\n".join(lines)


def outputs_list() -> str:
    """outputs/README.md's list of the files of a run directory."""
    lines = [f"- `{name}`: {text}." for name, text in _OTHER_FILES]
    for table in TABLES.values():
        when = " (when the model recorded it)" if table.optional else ""
        lines.append(f"- `{table.name}.parquet`: one row per {table.row}{when}; columns in `docs/tables.md`.")
    lines.extend(f"- `{name}`: {text}." for name, text in _GRAPHS_AND_FIGURES)
    return "\n".join(lines)


def _replace_between_markers(text: str, body: str, path: Path) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{path}: markers {START} / {END} not found")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{body}\n{END}{tail}"


def expected_files() -> dict[Path, str]:
    """Every generated file's expected content."""
    blank = f"# Output tables\n\n{START}\n{END}\n"
    doc = TABLES_DOC.read_text(encoding="utf-8") if TABLES_DOC.exists() else blank
    return {
        TABLES_DOC: _replace_between_markers(doc, tables_reference(), TABLES_DOC),
        README: _replace_between_markers(README.read_text(encoding="utf-8"), run_directory_block(), README),
        OUTPUTS_README: _replace_between_markers(
            OUTPUTS_README.read_text(encoding="utf-8"), outputs_list(), OUTPUTS_README
        ),
    }


def main(argv: list[str] | None = None) -> int:
    """Rewrite, or with --check compare, every generated part."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, content in expected_files().items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == content:
            continue
        if args.check:
            stale.append(path.relative_to(ROOT).as_posix())
        else:
            path.write_text(content, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run python docs/make_tables.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
