"""abm: an agent-based market stress simulator.

Leveraged traders hold positions in a future traded on one shared limit order book; accounts
below maintenance margin are liquidated into the same book, which can start a spiral. The
package compares margin rules under stress, reproducibly, from YAML scenario files.
"""

__version__ = "0.1.0"

__all__ = ["MarketModel", "__version__", "run_scenario"]


def __getattr__(name: str):
    # Lazy imports keep `import abm` light for the CLI's error paths.
    if name == "MarketModel":
        from abm.model import MarketModel

        return MarketModel
    if name == "run_scenario":
        from abm.runs import run_scenario

        return run_scenario
    raise AttributeError(f"module 'abm' has no attribute {name!r}")
