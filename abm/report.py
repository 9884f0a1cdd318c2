"""One self-contained HTML report of a run: figures, summary, cascades, scenario and manifest.

``report.html`` opens in any browser from the file system, with no server and nothing fetched: the
figures are embedded as base64 PNG ``data:`` URIs, the styles are inline, and there is no script. It is
written into the run directory after the run (it is not listed in the manifest, whose hashes cover the
run's own outputs) and can be rebuilt at any time with ``abm report RUN_DIR``.

Figures come from the run's ``figures/`` directory; those missing (a run written without figures) are
drawn from the run's tables into a temporary directory, so the run directory itself is left unchanged
apart from the report.

The page skeleton (:func:`render_html`, :func:`html_table`, :func:`figure_html`) is shared with
:func:`write_table_report`, which makes the same kind of page from a results table and a list of figure
files: the sweep report uses it.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from abm.headline import HEADLINE_MEASURES

__all__ = [
    "REPORT_NAME",
    "HEADLINE_METRICS",
    "write_report",
    "write_table_report",
    "render_html",
    "headline_table",
    "html_table",
    "figure_html",
]

REPORT_NAME = "report.html"
# The figures a risk researcher reads first, in this order; the full summary follows them.
HEADLINE_METRICS = (
    "max_drawdown",
    "min_mark",
    "liquidations",
    "liquidated_notional",
    "contagion_liquidated_notional",
    "cross_instrument_edge_share",
    "cascades",
    "largest_cascade",
    "largest_cascade_depth",
    "cascade_depth",
    "cascade_max_rounds",
    "branching_ratio",
    "max_rise",
    "bad_debt",
    "insurance_fund_used",
    "socialised_loss",
    "adl_volume",
    "absorption_hhi",
    "absorption_top_share",
    "maker_notional_share",
    "amplification",
)
_TOP_ROWS = 10
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: .2em; margin-top: 2em; }
table { border-collapse: collapse; margin: .5em 0; font-size: .9em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th { background: #f3f3f3; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1.5em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9em; } pre { background: #f7f7f7; padding: 1em; overflow-x: auto; }
.meta { color: #555; }
"""


def write_report(
    run_dir: Path | str,
    out_path: Path | str | None = None,
    *,
    draw_missing: bool = True,
    result: Any = None,
) -> Path:
    """Write ``report.html`` for a run directory.

    Args:
        run_dir: A run directory written by :func:`abm.outputs.write_run`.
        out_path: Where to write the report; by default ``<run_dir>/report.html``.
        draw_missing: Draw the figures the run directory lacks (else the report shows those it has).
        result: The :class:`~abm.results.RunResult` that wrote ``run_dir``, if at hand: its tables are
            used instead of being read back (``abm run`` passes it).

    Returns:
        The report's path.

    Raises:
        FileNotFoundError: ``run_dir`` is not a run directory.
    """
    from abm.figure_names import figure_caption
    from abm.outputs import FIGURES_DIR, read_run_tables, result_tables

    run_dir = Path(run_dir)
    run = result_tables(result, run_dir) if result is not None else read_run_tables(run_dir)
    manifest = run["manifest"]
    scenario = manifest.get("scenario", {})
    out_path = Path(out_path) if out_path is not None else run_dir / REPORT_NAME

    with tempfile.TemporaryDirectory(prefix="abm-report-") as scratch:
        if draw_missing:
            figures = _run_figures(run, run_dir / FIGURES_DIR, Path(scratch), scenario.get("shocks", []))
        else:
            figures = sorted((run_dir / FIGURES_DIR).glob("*.png"))
        figure_blocks = [figure_html(path, figure_caption(path.name)) for path in figures]

    summary = run["summary"]
    title = f"Run report: {scenario.get('name', run_dir.name)} (seed {manifest.get('seed')})"
    sections = [("Headline figures", html_table(headline_table(summary)))]
    if isinstance(summary.get("by_instrument"), Mapping):
        sections.append(("Instruments", _instrument_section(summary["by_instrument"])))
    if isinstance(summary.get("by_group"), Mapping) and summary["by_group"]:
        sections.append(("Trader groups before the stress", _group_section(summary["by_group"])))
    sections += [
        ("Figures", "\n".join(figure_blocks) or "<p>No figures.</p>"),
        ("Cascades", _cascade_section(run)),
        ("Counterparties of last resort", _absorption_section(run)),
        (
            "All summary figures",
            _details("summary.json", html_table(_flat(summary), header=("metric", "value"))),
        ),
        ("Scenario", _pre(yaml.safe_dump(scenario, sort_keys=False, allow_unicode=True))),
        ("Manifest", _details("manifest.json", _pre(_manifest_text(manifest)))),
    ]
    meta = _meta_line(manifest, run_dir)
    _write_atomic(out_path, render_html(title, sections, intro=meta))
    return out_path


def write_table_report(
    out_path: Path | str,
    title: str,
    table: pd.DataFrame,
    figure_paths: Iterable[Path | str] = (),
    *,
    intro: str | None = None,
    captions: Mapping[str, str] | None = None,
    extra_sections: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write a self-contained report of a results table and figures (e.g. a sweep's per-rule comparison).

    Args:
        out_path: The HTML file to write.
        title: Page title.
        table: The results table (shown whole, index left out).
        figure_paths: PNG files to embed, in order.
        intro: A sentence or two of plain text under the title.
        captions: Figure captions by file name (default: the file name).
        extra_sections: Further ``(heading, HTML)`` sections, appended after the figures.

    Returns:
        ``out_path`` as a :class:`~pathlib.Path`.
    """
    captions = captions or {}
    figures = [figure_html(Path(p), captions.get(Path(p).name, Path(p).stem)) for p in figure_paths]
    sections = [
        ("Results", html_table(table)),
        ("Figures", "\n".join(figures) or "<p>No figures.</p>"),
        *extra_sections,
    ]
    out_path = Path(out_path)
    _write_atomic(out_path, render_html(title, sections, intro=html.escape(intro) if intro else None))
    return out_path


def render_html(title: str, sections: Sequence[tuple[str, str]], intro: str | None = None) -> str:
    """The page skeleton: a complete HTML document with inline styles and no scripts.

    Args:
        title: Page title (plain text; escaped here).
        sections: ``(heading, body)`` pairs; headings are plain text, bodies trusted HTML.
        intro: Trusted HTML shown under the title.

    Returns:
        The document text.
    """
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style>",
        "</head>",
        "<body>",
        f"<h1>{html.escape(title)}</h1>",
    ]
    if intro:
        parts.append(f'<p class="meta">{intro}</p>')
    for heading, body in sections:
        parts.append(f"<section><h2>{html.escape(heading)}</h2>\n{body}\n</section>")
    parts += ["</body>", "</html>", ""]
    return "\n".join(parts)


def html_table(data: pd.DataFrame | Mapping[str, Any], header: Sequence[str] | None = None) -> str:
    """An HTML table of a DataFrame (columns as header) or a mapping (one ``key | value`` row each).

    Args:
        data: The table or mapping; values are formatted (floats to 6 significant digits, None as n/a)
            and escaped.
        header: Column titles (default: the DataFrame's columns; none for a mapping).

    Returns:
        The ``<table>`` element.
    """
    if isinstance(data, pd.DataFrame):
        columns = list(header) if header is not None else [str(c) for c in data.columns]
        rows = [list(row) for row in data.itertuples(index=False)]
    else:
        columns = list(header) if header is not None else []
        rows = [[key, value] for key, value in data.items()]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "\n".join(
        "<tr>" + "".join(f"<td>{html.escape(_format(v))}</td>" for v in row) + "</tr>" for row in rows
    )
    head_row = f"<thead><tr>{head}</tr></thead>" if columns else ""
    return f"<table>{head_row}<tbody>\n{body}\n</tbody></table>"


def figure_html(path: Path | str, caption: str) -> str:
    """A ``<figure>`` with the PNG at ``path`` embedded as a base64 ``data:`` URI.

    Args:
        path: A PNG file.
        caption: Plain-text caption (also the image's alt text).

    Returns:
        The ``<figure>`` element.
    """
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    alt = html.escape(caption, quote=True)
    name = html.escape(Path(path).name, quote=True)
    return (
        f'<figure id="fig-{name}"><img alt="{alt}" data-file="{name}" src="data:image/png;base64,{data}">'
        f"<figcaption>{html.escape(caption)}</figcaption></figure>"
    )


# --------------------------------------------------------------------------- sections of a run report


def _run_figures(run: Mapping[str, Any], fig_dir: Path, scratch: Path, shocks: Sequence[Any]) -> list[Path]:
    """The run's figures in report order, drawing into ``scratch`` those the run directory lacks."""
    from abm.figure_names import FIGURE_NAMES, figure_order, has_figure, instrument_names

    present = {p.name: p for p in sorted(fig_dir.glob("*.png"))} if fig_dir.is_dir() else {}
    if not all(has_figure(name, present) for name in FIGURE_NAMES):
        # matplotlib only when something is missing: a complete run directory's report does not
        # import it (0.4-0.6 s of `abm report`).
        from abm.plots import plot_tables

        drawn = {p.name: p for p in plot_tables(run, shocks, scratch)}
        for name, path in drawn.items():
            present.setdefault(name, path)
    return [present[name] for name in figure_order(present, instrument_names(run["timeseries"]))]


# Per-instrument figures shown in the report's instrument table, in this order, when present.
INSTRUMENT_METRICS = (
    "liquidations",
    "liquidated_notional",
    "max_drawdown",
    "min_mark",
    "final_mark",
    "volume",
    "adl_volume",
    "mmr_max",
)


def _instrument_section(by_instrument: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per instrument with its own figures (``summary.json``'s ``by_instrument``)."""
    rows = [
        {"instrument": name, **{key: figures.get(key) for key in INSTRUMENT_METRICS if key in figures}}
        for name, figures in by_instrument.items()
    ]
    return html_table(pd.DataFrame(rows))


def _group_section(by_group: Mapping[str, Mapping[str, Any]]) -> str:
    """One row per leveraged-trader group: its accounts' risk before the stress and who was liquidated."""
    intro = (
        "<p>Medians over the group's accounts with a position, the step before the first shock: "
        "utilisation = initial margin / equity; buffer = equity / maintenance - 1; distance = the move "
        "of every mark together that liquidates the account; within 5% = the share such a move "
        "liquidates. Liquidated = the share of the group's accounts liquidated in the run.</p>"
    )
    rows = [{"group": name, **figures} for name, figures in by_group.items()]
    return intro + html_table(pd.DataFrame(rows))


def _flat(summary: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    # Nested entries (by_instrument) as dotted names, as the sweep's results table has them.
    flat: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def headline_table(summary: Mapping[str, Any], names: Sequence[str] = HEADLINE_METRICS) -> pd.DataFrame:
    """The headline figures a summary holds, with their units and definitions (:mod:`abm.headline`).

    Args:
        summary: A run's summary.
        names: The measures shown, in order (those missing from ``summary`` are left out).

    Returns:
        Columns ``metric``, ``value``, ``unit``, ``definition``.
    """
    rows = []
    for name in names:
        if name in summary:
            measure = HEADLINE_MEASURES[name]
            rows.append((name, summary[name], measure.unit, measure.definition))
    return pd.DataFrame(rows, columns=["metric", "value", "unit", "definition"])


def _cascade_section(run: Mapping[str, Any]) -> str:
    from abm.cascades import TableCascade

    liquidations = run["liquidations"]
    if liquidations is None or liquidations.empty:
        return "<p>No liquidations.</p>"
    cascade = TableCascade(liquidations)  # what the cascade DAG would give, without building it
    components = cascade.components()
    measures = cascade.measures(components)
    shown = components.head(_TOP_ROWS)
    note = f"<p>The {len(shown)} largest of {len(components)} cascades.</p>"
    return html_table(measures, header=("measure", "value")) + note + html_table(shown)


def _absorption_section(run: Mapping[str, Any]) -> str:
    from abm.network import absorption_by_kind, liquidation_absorption, maker_centrality

    graph = run.get("trade_graph")
    if graph is None:
        return "<p>No trade network in this run directory.</p>"
    absorption = liquidation_absorption(graph)
    if absorption.empty:
        parts = ["<p>No forced flow.</p>"]
    else:
        parts = [
            "<p>Who took the other side of the liquidation orders (and the engine's backstop), by kind "
            f"and for the {min(_TOP_ROWS, len(absorption))} largest accounts.</p>",
            html_table(absorption_by_kind(graph, absorption), header=("kind", "share of forced notional")),
            html_table(absorption.head(_TOP_ROWS)),
        ]
    makers = maker_centrality(graph)
    if len(makers):
        parts += ["<p>Centrality of the market makers in the trade network.</p>", html_table(makers)]
    return "\n".join(parts)


def _meta_line(manifest: Mapping[str, Any], run_dir: Path) -> str:
    items = [
        ("run directory", run_dir.as_posix()),
        ("abm", manifest.get("abm_version")),
        ("git commit", manifest.get("git_commit")),
        ("started", manifest.get("start_time")),
        ("wall seconds", manifest.get("wall_seconds")),
        ("report written", _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")),
    ]
    description = manifest.get("scenario", {}).get("description")
    line = " · ".join(f"{html.escape(k)}: {html.escape(_format(v))}" for k, v in items if v is not None)
    return f"{html.escape(description)}<br>{line}" if description else line


def _manifest_text(manifest: Mapping[str, Any]) -> str:
    # The scenario has its own section; the rest of the manifest is shown as written.
    rest = {key: value for key, value in manifest.items() if key != "scenario"}
    return json.dumps(rest, indent=2, sort_keys=True, ensure_ascii=False)


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{html.escape(summary)}</summary>\n{body}\n</details>"


def _pre(text: str) -> str:
    return f"<pre>{html.escape(text)}</pre>"


def _format(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return str(bool(value)).lower()
    if isinstance(value, float | np.floating):
        number = float(value)
        return "n/a" if math.isnan(number) else f"{number:.6g}"
    if isinstance(value, Mapping | list):
        return json.dumps(value, sort_keys=True)
    return str(value)


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        # mkstemp makes the file private; a report should follow the umask like the rest of the run.
        from abm.outputs import current_umask

        os.chmod(temp_name, 0o666 & ~current_umask())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
