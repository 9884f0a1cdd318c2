"""docs/ODD.md: its parameter tables match the scenario schema, and its links point at real files."""

import importlib.util
import re
from pathlib import Path

from abm.config import schema

ROOT = Path(__file__).resolve().parents[2]
ODD = ROOT / "docs" / "ODD.md"


def _generator():
    spec = importlib.util.spec_from_file_location("odd_parameters", ROOT / "docs" / "odd_parameters.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_parameter_tables_are_in_sync_with_the_schema():
    generator = _generator()
    document = ODD.read_text(encoding="utf-8")
    assert generator.render(document) == document, "run: python docs/odd_parameters.py"


def test_every_scenario_field_has_a_row_with_its_default():
    document = ODD.read_text(encoding="utf-8")
    for name in schema.MarketConfig.model_fields:
        assert f"| `market.{name}` |" in document
    assert "| `fundamental.volatility` | float | 0.0005 |" in document
    assert "| `liquidation.max_rounds` | int | 50 |" in document
    for kind in schema.AGENT_KINDS:
        assert f"`{kind}`" in document


def test_odd_has_the_protocol_sections_and_links_resolve():
    document = ODD.read_text(encoding="utf-8")
    for heading in (
        "Purpose and patterns",
        "Entities, state variables and scales",
        "Process overview and scheduling",
        "Design concepts",
        "Initialisation",
        "Input data",
        "Submodels",
    ):
        assert re.search(rf"^## \d\. {heading}$", document, re.MULTILINE), heading
    for target in re.findall(r"\]\(([^)#]+)\)", document):
        if not target.startswith("http"):
            assert (ODD.parent / target).exists(), target


def test_readme_links_the_odd_document():
    assert "docs/ODD.md" in (ROOT / "README.md").read_text(encoding="utf-8")
