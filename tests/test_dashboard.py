"""The live dashboard: its scenario controls, and ``abm dash`` served and driven in headless Chromium.

The browser test starts ``abm dash`` as a user would, with every proxy variable pointing at a closed
port (so a script or style fetched from the internet by the server fails) and the browser refusing
any address but the server's: the page must render from the installed packages alone. It checks the
panels render, that Step advances them, that a margin rule chosen in the controls takes effect on
Reset, and that SIGTERM stops the server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("solara")
from abm import dashboard  # noqa: E402
from abm.cli import main  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def test_the_controls_change_the_scenario_as_documented():
    base = dashboard.dashboard_scenario("spiral")
    scaled = dashboard.dashboard_scenario("spiral", "ewma_vol", leverage_scale=0.5, shock_scale=2.0)
    # spiral: leverage uniform 10-25x, a -4% jump and a 1,500-lot sell program; the controls give
    # 5-12.5x, -8% and 3,000 lots, and the policy comparison's ewma_vol section.
    assert (base.agents[1].leverage.low, base.agents[1].leverage.high) == (10.0, 25.0)
    assert (scaled.agents[1].leverage.low, scaled.agents[1].leverage.high) == (5.0, 12.5)
    assert [shock.size for shock in scaled.shocks if shock.type == "fundamental_jump"] == [-0.08]
    assert [shock.quantity for shock in scaled.shocks if shock.type == "market_order"] == [3000]
    assert scaled.margin.rule == "ewma_vol" and scaled.margin.decay == 0.94
    assert scaled.margin.call_buffer == base.margin.call_buffer == 0.25  # the spiral's own, kept
    # Leverage stops at 1 / initial margin (fixed 4%: 25x; the tiered rule's first bracket is 4% too,
    # and its higher brackets ask more only of larger positions); a jump of -99% at most.
    extreme = dashboard.dashboard_scenario("spiral", leverage_scale=10.0, shock_scale=100.0)
    assert extreme.agents[1].leverage.low == 25.0 and extreme.agents[1].leverage.high == 25.0
    assert extreme.shocks[0].size == -0.99
    # A rule whose rates move has no such bound before the run: the schema's 100x.
    moving = dashboard.dashboard_scenario("spiral", "ewma_vol", leverage_scale=10.0)
    assert moving.agents[1].leverage.high == 100.0
    with pytest.raises(ValueError, match="margin_rule: 'nope' is not one of fixed, tiered"):
        dashboard.dashboard_scenario("spiral", "nope")


def test_every_instrument_takes_the_chosen_rule():
    scenario = dashboard.dashboard_scenario("contagion", "historical_var")
    assert {item.margin.rule for item in scenario.instrument_configs()} == {"historical_var"}


def test_every_panel_draws_at_the_start_and_after_steps():
    model = dashboard.DashboardModel("spiral", margin_rule="tiered", rng=3)
    for panel in dashboard.PANELS:  # before the first step: nothing recorded yet
        panel(model)
    for _ in range(5):
        model.step()
    assert model.margin_rule_label == "tiered" and model.recorder.rows == 5
    for panel in dashboard.PANELS:
        panel(model)
    # Several instruments: the price panel draws every instrument's mark; the rule applies to both.
    contagion = dashboard.DashboardModel("contagion", margin_rule="ewma_vol", leverage_scale=1.5)
    for _ in range(3):
        contagion.step()
    assert contagion.margin_rule_label == "ewma_vol" and contagion.recorder.rows == 6
    for panel in dashboard.PANELS:
        panel(contagion)


def test_dash_refuses_a_bad_scenario_before_serving(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: -5\n", encoding="utf-8")
    assert main(["dash", str(bad)]) == 2
    assert "steps" in capsys.readouterr().err
    assert main(["dash", "spiral", "--port", "0"]) == 2


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_for_port(port: int, process: subprocess.Popen, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"abm dash exited with {process.returncode} before serving")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.2)
    raise AssertionError(f"abm dash did not listen on port {port} within {seconds} s")


@pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (the CI script installs it)")
def test_abm_dash_serves_a_live_page_offline(tmp_path):
    playwright = pytest.importorskip("playwright.sync_api")
    port = _free_port()
    closed = "http://127.0.0.1:9"  # nothing listens there: any fetch from the internet fails
    environment = {
        **os.environ,
        "HTTP_PROXY": closed,
        "HTTPS_PROXY": closed,
        "http_proxy": closed,
        "https_proxy": closed,
        "NO_PROXY": "127.0.0.1",
        "no_proxy": "127.0.0.1",
    }
    log = tmp_path / "server.log"
    command = [sys.executable, "-m", "abm.cli", "dash", "spiral", "--port", str(port)]
    with log.open("w") as sink:
        server = subprocess.Popen(command, env=environment, cwd=tmp_path, stdout=sink, stderr=sink)
    try:
        _wait_for_port(port, server, 60)
        outside: list[str] = []
        failed: list[str] = []
        with playwright.sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
            page = browser.new_page(viewport={"width": 1400, "height": 1000})

            def only_the_server(route):
                if route.request.url.startswith(f"http://127.0.0.1:{port}/"):
                    route.continue_()
                else:
                    outside.append(route.request.url)
                    route.abort()

            page.route("**/*", only_the_server)
            page.on("response", lambda response: response.status >= 400 and failed.append(response.url))
            page.goto(f"http://127.0.0.1:{port}/")
            page.get_by_text("0 of 600 steps").wait_for(timeout=90_000)
            for label in ("Reset", "Step", "Margin rule", "Leverage (x the scenario's)"):
                assert page.get_by_text(label, exact=True).count() >= 1, label

            def figures() -> list[str]:
                # The five matplotlib panels, each a PNG that has loaded (a broken image has no width),
                # read back as the bytes the browser shows (solara serves them as blob: URLs).
                page.wait_for_function(
                    "() => [...document.images].filter(i => i.complete && i.naturalWidth > 0).length >= 5",
                    timeout=60_000,
                )
                return page.evaluate(
                    """async () => Promise.all([...document.images].map(async (image) => {
                        const bytes = new Uint8Array(await (await fetch(image.src)).arrayBuffer());
                        let hash = 0;
                        for (const byte of bytes) hash = (hash * 31 + byte) >>> 0;
                        return `${bytes.length}:${hash}`;
                    }))"""
                )

            before = figures()
            assert len(before) == 5
            page.get_by_role("button", name="Step").click()
            page.get_by_text("5 of 600 steps").wait_for(timeout=60_000)
            deadline = time.monotonic() + 60
            while (after := figures())[0] == before[0] and time.monotonic() < deadline:
                time.sleep(0.5)
            # The price, depth, liquidation and margin panels now hold five steps (the cascade panel
            # stays "no liquidations" until the shock at step 300).
            assert [a != b for a, b in zip(after, before, strict=True)][:4] == [True] * 4

            # A rule chosen in the controls takes effect on Reset.
            page.get_by_text("the scenario's own", exact=True).click()
            page.get_by_role("option", name="ewma_buffer", exact=True).click()
            page.get_by_role("button", name="Reset").click()
            page.get_by_text("0 of 600 steps, margin rule ewma_buffer").wait_for(timeout=60_000)
            browser.close()
        assert outside == [] and failed == [], (outside, failed)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            status = server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
            raise
    assert status == 143, Path(log).read_text()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
