"""The run report (abm.report): every figure embedded, self-contained, opens in headless Chromium."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from abm.outputs import FIGURES_DIR, MANIFEST_NAME, write_run
from abm.plots import FIGURE_DPI, FIGURE_NAMES, FIGURE_SIZE
from abm.report import REPORT_NAME, html_table, write_report, write_table_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
IMAGE = re.compile(r'<img alt="[^"]*" data-file="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]*)">')
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


# One worker runs this module (pytest -n): its module fixture is made once, not once per worker.
pytestmark = pytest.mark.xdist_group("test_report")


@pytest.fixture(scope="module")
def spiral_dir(tmp_path_factory):
    """A spiral run written without figures: the report draws them (once, for every test here)."""
    from abm.config import load_scenario, resolve_scenario
    from abm.runs import run_scenario

    result = run_scenario(load_scenario(resolve_scenario("spiral")), seed=7)
    run_dir = write_run(result, tmp_path_factory.mktemp("runs") / "spiral-7", figures=False)
    files_before = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
    write_report(run_dir)
    files_after = sorted(p.relative_to(run_dir).as_posix() for p in run_dir.rglob("*"))
    # The figures were drawn elsewhere: the report is the only new file in the run directory.
    assert files_after == sorted([*files_before, REPORT_NAME])
    return run_dir


def embedded_images(text: str) -> dict[str, bytes]:
    return {name: base64.b64decode(data, validate=True) for name, data in IMAGE.findall(text)}


def test_report_embeds_every_figure(spiral_dir):
    text = (spiral_dir / REPORT_NAME).read_text(encoding="utf-8")
    images = embedded_images(text)
    assert list(images) == list(FIGURE_NAMES)  # all of them, in report order
    assert text.count("<img ") == len(FIGURE_NAMES)
    for name, data in images.items():
        assert data[:8] == PNG_MAGIC, name
        assert len(data) > 1000, name
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (round(FIGURE_SIZE[0] * FIGURE_DPI), round(FIGURE_SIZE[1] * FIGURE_DPI))


def test_report_of_several_instruments_shows_each_one(tmp_path):
    from abm.config import load_scenario, resolve_scenario
    from abm.runs import run_scenario

    overrides = ["steps=80", "shocks.0.step=40", "shocks.1.step=40"]
    result = run_scenario(load_scenario(resolve_scenario("contagion"), overrides), seed=1)
    run_dir = write_run(result, tmp_path / "contagion-1")
    text = write_report(run_dir).read_text(encoding="utf-8")
    names = list(embedded_images(text))
    assert names == [
        "price.png",
        "price_A.png",
        "price_B.png",
        "depth_A.png",
        "depth_B.png",
        *[name for name in FIGURE_NAMES if name not in ("price.png", "depth.png")],
    ]
    section = text[text.index("<h2>Instruments</h2>") :]
    section = section[: section.index("</table>")]
    assert [cell for cell in re.findall(r"<tr><td>([^<]*)</td>", section)] == ["A", "B"]
    assert "by_instrument.B.max_drawdown" in text  # nested summary entries listed by dotted name


def test_report_embeds_the_run_directory_figures(spiral_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(spiral_dir, copy)
    images = embedded_images((spiral_dir / REPORT_NAME).read_text(encoding="utf-8"))
    figures = copy / FIGURES_DIR
    figures.mkdir()
    for name, data in images.items():
        (figures / name).write_bytes(data)
    # A swapped file and an extra one: the report must take the files as they are, extras last.
    (figures / "price.png").write_bytes(images["cascade.png"])
    (figures / "zz_extra.png").write_bytes(images["margin.png"])
    embedded = embedded_images(write_report(copy).read_text(encoding="utf-8"))
    assert list(embedded) == [*FIGURE_NAMES, "zz_extra.png"]
    assert embedded["price.png"] == images["cascade.png"]
    assert embedded["zz_extra.png"] == images["margin.png"]


def test_the_report_of_a_run_with_all_its_figures_does_not_import_matplotlib(spiral_dir, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(spiral_dir, copy)
    (copy / FIGURES_DIR).mkdir()
    for name, data in embedded_images((spiral_dir / REPORT_NAME).read_text(encoding="utf-8")).items():
        (copy / FIGURES_DIR / name).write_bytes(data)
    # A fresh process: this one has imported matplotlib already. Without figures it must import it.
    probe = "import sys; from abm.report import write_report; write_report(sys.argv[1]); "
    probe += "print('matplotlib' in sys.modules)"
    for run_dir, imported in ((copy, "False"), (spiral_dir, "True")):
        found = subprocess.run([sys.executable, "-c", probe, str(run_dir)], capture_output=True, text=True)
        assert found.returncode == 0, found.stderr
        assert found.stdout.strip() == imported


def test_report_holds_summary_scenario_and_manifest(spiral_dir):
    text = (spiral_dir / REPORT_NAME).read_text(encoding="utf-8")
    summary = json.loads((spiral_dir / "summary.json").read_text())
    manifest = json.loads((spiral_dir / MANIFEST_NAME).read_text())
    assert f"<td>max_drawdown</td><td>{summary['max_drawdown']:.6g}</td>" in text
    assert f"<td>largest_cascade</td><td>{summary['largest_cascade']}</td>" in text
    assert "name: spiral" in text  # the scenario as YAML
    assert html.escape(f'"scenario_sha256": "{manifest["scenario_sha256"]}"') in text
    assert "Counterparties of last resort" in text and "liquidation_engine" in text


def test_report_is_self_contained(spiral_dir):
    text = (spiral_dir / REPORT_NAME).read_text(encoding="utf-8")
    assert "<script" not in text
    sources = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert sources and all(source.startswith("data:") for source in sources)
    assert text.startswith("<!DOCTYPE html>") and text.rstrip().endswith("</html>")


def test_report_of_a_non_run_directory_fails(tmp_path):
    with pytest.raises(FileNotFoundError):
        write_report(tmp_path)


def test_table_report_escapes_and_embeds(tmp_path, spiral_dir):
    table = pd.DataFrame({"rule": ["fixed", "<b>vol</b>"], "max_drawdown": [0.1234567, None]})
    figure = tmp_path / "price.png"
    figure.write_bytes(embedded_images((spiral_dir / REPORT_NAME).read_text(encoding="utf-8"))["price.png"])
    path = write_table_report(tmp_path / "sweep.html", "Sweep & rules", table, [figure], intro="two rules")
    text = path.read_text(encoding="utf-8")
    assert "<title>Sweep &amp; rules</title>" in text
    assert "<td>&lt;b&gt;vol&lt;/b&gt;</td><td>n/a</td>" in text
    assert "<td>fixed</td><td>0.123457</td>" in text
    assert embedded_images(text) == {"price.png": figure.read_bytes()}


def test_html_table_of_a_mapping():
    assert html_table({"a": 1, "b": 0.5, "c": None}) == (
        "<table><tbody>\n<tr><td>a</td><td>1</td></tr>\n<tr><td>b</td><td>0.5</td></tr>\n"
        "<tr><td>c</td><td>n/a</td></tr>\n</tbody></table>"
    )


# --------------------------------------------------------------------------- headless Chromium

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no chromium binary on PATH (Debian: apt-get install chromium); nothing is installed",
)
# Loads the report in a frame and writes how many of its images decoded into the harness's own DOM.
HARNESS = """<!DOCTYPE html><html><body><div id="result">pending</div>
<iframe id="frame" src="report.html" width="1200" height="800"></iframe>
<script>
document.getElementById("frame").addEventListener("load", function () {
  var images = Array.prototype.slice.call(this.contentDocument.images);
  var broken = images.filter(function (i) { return !(i.complete && i.naturalWidth > 0); });
  document.getElementById("result").textContent = "images=" + images.length + " broken=" + broken.length;
});
</script></body></html>
"""


def run_chromium(page: Path) -> tuple[str, list[str]]:
    """Open ``page`` headless; return the DOM after scripts ran and the console messages logged."""
    with tempfile.TemporaryDirectory(prefix="abm-chromium-") as profile:
        completed = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                "--allow-file-access-from-files",
                "--enable-logging=stderr",
                "--log-level=0",
                "--virtual-time-budget=5000",
                "--dump-dom",
                page.as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert completed.returncode == 0, completed.stderr[-2000:]
    console = [line for line in completed.stderr.splitlines() if ":CONSOLE" in line]
    return completed.stdout, console


@needs_chromium
def test_chromium_detects_console_errors(tmp_path):
    # The check below is only worth something if a broken page does log to the console here.
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><html><body><script>undefinedFunction();</script></body></html>")
    _, console = run_chromium(page)
    assert any("undefinedFunction" in line for line in console)


@needs_chromium
def test_report_opens_in_chromium_without_console_errors(spiral_dir, tmp_path):
    shutil.copy(spiral_dir / REPORT_NAME, tmp_path / REPORT_NAME)
    harness = tmp_path / "harness.html"
    harness.write_text(HARNESS)
    dom, console = run_chromium(harness)
    assert console == []
    assert f'<div id="result">images={len(FIGURE_NAMES)} broken=0</div>' in dom

    report_dom, report_console = run_chromium(tmp_path / REPORT_NAME)
    assert report_console == []
    assert "Run report: spiral (seed 7)" in report_dom


# --------------------------------------------------------------------------- command line


def test_cli_run_writes_a_report_unless_told_not_to(tmp_path, capsys):
    from abm.cli import EXIT_OK, main

    with_report, without = tmp_path / "with", tmp_path / "without"
    assert main(["run", "calm", "--steps", "10", "--no-progress", "--out", str(with_report)]) == EXIT_OK
    assert f"report: {with_report / REPORT_NAME}" in capsys.readouterr().out
    assert list(embedded_images((with_report / REPORT_NAME).read_text(encoding="utf-8"))) == list(
        FIGURE_NAMES
    )
    assert main(["run", "calm", "--steps", "10", "--no-progress", "--no-report", "--out", str(without)]) == 0
    assert not (without / REPORT_NAME).exists() and (without / MANIFEST_NAME).is_file()

    assert main(["report", str(without)]) == EXIT_OK
    assert (without / REPORT_NAME).is_file()


def test_cli_report_of_a_missing_or_non_run_directory(tmp_path, capsys):
    from abm.cli import EXIT_USAGE, main

    assert main(["report", str(tmp_path / "nowhere")]) == EXIT_USAGE
    assert main(["report", str(tmp_path)]) == EXIT_USAGE
    assert "is not a run directory" in capsys.readouterr().err
    assert not (tmp_path / REPORT_NAME).exists()


def test_every_headline_measure_has_a_unit_and_a_definition() -> None:
    # One table of definitions (abm.headline) for the command line, the run report and the sweep report.
    from abm.cli import HEADLINE_METRICS as command_line
    from abm.headline import HEADLINE_MEASURES
    from abm.report import HEADLINE_METRICS as run_report
    from abm.sweep.report import HEADLINE_MEASURES as sweep_report

    for name in (*command_line, *run_report, *sweep_report):
        measure = HEADLINE_MEASURES[name]
        assert measure.unit and len(measure.definition) > 15, name


def test_the_headline_table_carries_units_and_definitions() -> None:
    from abm.report import headline_table

    table = headline_table({"max_drawdown": 0.12, "liquidations": 3, "not_a_headline": 1.0})
    assert table["metric"].tolist() == ["max_drawdown", "liquidations"]
    assert table["unit"].tolist() == ["share of peak", "count"]
    assert table["definition"].str.len().min() > 15
