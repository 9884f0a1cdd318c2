"""The shipped scenario and sweep files, installed as the package ``abm.scenarios``.

This folder stays at the top of the repository; ``pyproject.toml`` maps it into the wheel, and
``abm.config.SCENARIOS_DIR`` finds it through ``importlib.resources``, in a source checkout and in an
installed package alike.
"""
