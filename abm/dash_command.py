"""``abm dash SCENARIO``: serve the live dashboard (:mod:`abm.dashboard`) on a loopback port.

The scenario is validated first, with the same messages and exit status 2 as ``abm run``; then a
solara server is started as a child process on ``127.0.0.1`` only, with solara's telemetry off. Its
page's scripts and styles come from the installed ``solara-assets`` package (solara serves its CDN
files from there), so the dashboard works offline. Ctrl-C or SIGTERM stops the server; the command
returns 130 or 143 as ``abm run`` does.

Only the standard library is imported here (``abm --help`` must stay fast).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys

__all__ = [
    "OVERRIDES_ENVIRONMENT",
    "SCENARIO_ENVIRONMENT",
    "add_dash_command",
    "dash_command",
    "server_command",
]

# The scenario file and its ``--set`` overrides (a JSON list), for the server process: solara imports
# abm.dashboard there, which reads them.
SCENARIO_ENVIRONMENT = "ABM_DASH_SCENARIO"
OVERRIDES_ENVIRONMENT = "ABM_DASH_SET"
DEFAULT_PORT = 8765
LOOPBACK = "127.0.0.1"


def add_dash_command(commands: argparse._SubParsersAction) -> None:
    """Register ``abm dash``."""
    from abm.cli import _add_overrides, add_no_user_code

    parser = commands.add_parser(
        "dash", help="serve a live dashboard of a scenario on http://127.0.0.1:PORT (Mesa's SolaraViz)"
    )
    parser.add_argument("file", metavar="FILE", help="scenario file or scenario name (see `abm list`)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"loopback port to serve on (default {DEFAULT_PORT})"
    )
    _add_overrides(parser)
    add_no_user_code(parser)
    parser.set_defaults(handler=dash_command)


def server_command(port: int) -> list[str]:
    """The command line of the solara server (this interpreter, the dashboard module, loopback only)."""
    return [
        sys.executable,
        "-m",
        "solara",
        "run",
        "abm.dashboard",
        "--host",
        LOOPBACK,
        "--port",
        str(port),
        "--no-open",
        "--production",
    ]


def dash_command(options: argparse.Namespace) -> int:
    """Validate the scenario, then serve the dashboard until interrupted."""
    from abm.cli import EXIT_INTERNAL, EXIT_USAGE, _interrupted, load_checked_scenario

    if not 0 < options.port < 65536:
        print(f"error: --port: {options.port} is not a port (1-65535)", file=sys.stderr)
        return EXIT_USAGE
    loaded = load_checked_scenario(options.file, options.overrides, options.no_user_code)
    if isinstance(loaded, int):
        return loaded
    path, scenario = loaded
    missing = [name for name in ("solara", "mesa.visualization") if importlib.util.find_spec(name) is None]
    if missing:
        print(
            "error: abm dash needs the dashboard extra (Mesa's visualisation and solara): "
            "python3 -m pip install 'abm-stress[dash]'",
            file=sys.stderr,
        )
        return EXIT_INTERNAL

    environment = {
        **os.environ,
        SCENARIO_ENVIRONMENT: str(path),
        OVERRIDES_ENVIRONMENT: json.dumps(list(options.overrides)),
        # No calls home: solara reports usage to mixpanel unless told not to.
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        # Solara warns that a cookie cannot be samesite=none over http on 127.0.0.1: true, and harmless here.
        "PYTHONWARNINGS": "ignore::UserWarning:solara.server.starlette",
    }
    print(
        f"serving {scenario.name} at http://{LOOPBACK}:{options.port}/ (Ctrl-C stops it)",
        file=sys.stderr,
        flush=True,
    )
    server = subprocess.Popen(server_command(options.port), env=environment)
    try:
        return server.wait()
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM turned into Terminated by abm.cli
        server.terminate()
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        return _interrupted(exc)
