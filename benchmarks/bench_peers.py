"""This project beside its peers, on their own workloads, in one process tree (a script, not a test).

**The book.** One pre-drawn stream of limit / market / cancel operations (the standard mix of
``bench_book.py``: 70% limit orders near a drifting anchor, 19% cancels of a random resting order,
1% cancel-all, 10% market orders) sent one call per operation to: this project's pure book
(``abm.book.OrderBook``), its compiled book (``abm.book.fast``, extra ``fast``), PyMarketSim's
``FourHeap`` (with a local checkout, ``--pymarketsim PATH``) and ABIDES's ``OrderBook`` (when
``abides_markets`` is importable). ``FourHeap`` is a call market: the adapter inserts each order and
clears the market after it, so that it trades continuously as the others do, and a market order is a
limit order at the opposite extreme whose rest is withdrawn. ABIDES's ``OrderBook`` runs behind a
stand-in for its exchange agent (a clock, no book logging, messages kept only to track which orders
still rest); a market order with a protection limit is a limit order whose rest is cancelled, since
ABIDES's market orders take no limit.

**The whole model.** PyMarketSim's own rows (``SimulatorSampledArrival``: zero-intelligence agents
arriving with probability ``lam`` a step, one book): ``stress`` (500 agents, 50,000 steps, lam 0.005)
and ``dense`` (5,000 agents, 3,000 steps, lam 0.02); here the equivalent scenario is that many noise
traders with that arrival rate on one book and nothing else (no makers, no leverage, no shocks), run
with each book engine. Rounds interleave the systems, and the median is reported, since this VM's
speed drifts by tens of percent within minutes.

Without ``--pymarketsim`` it says how to get a checkout and runs this project's side alone. PyMarketSim
is not installed, only put on ``sys.path``; modules these rows do not use import ``torch`` (the eager
mean-reverting fundamental) and ``fastcubicspline`` (HBL agents), which are stubbed when missing.

Usage::

    git clone https://github.com/dipplestix/pymarketsim   # into ./pymarketsim
    python benchmarks/bench_peers.py --pymarketsim pymarketsim [--ops 200000] [--rounds 3]

For ABIDES's book, install its two packages without their pinned dependencies (which would replace
this environment's numpy and pandas)::

    git clone https://github.com/jpmorganchase/abides-jpmc-public abides
    pip install --no-deps -e abides/abides-core -e abides/abides-markets
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
import types
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # run from a checkout without installing
sys.path.insert(0, str(HERE))

from bench_book import draw_operations, drive  # noqa: E402

from abm import config  # noqa: E402
from abm.book import OrderBook  # noqa: E402

ROWS = {"stress": (500, 50_000, 0.005), "dense": (5_000, 3_000, 0.02)}


class FourHeapBook:
    """PyMarketSim's FourHeap behind the calls ``bench_book.drive`` makes (continuous trading)."""

    def __init__(self, fourheap_class, order_class) -> None:
        self.heap = fourheap_class()
        self.order = order_class
        self.next_id = 0
        self.time = 0
        self.owned: dict[int, list[int]] = {}

    def _send(self, owner: int, side: int, price: float, quantity: int) -> tuple[int, list]:
        self.next_id += 1
        self.time += 1
        order = self.order(price=price, order_type=side, quantity=quantity, agent_id=owner, time=self.time,
                           order_id=self.next_id)  # fmt: skip
        self.heap.insert(order)
        self.owned.setdefault(owner, []).append(self.next_id)
        return self.next_id, self.heap.market_clear(self.time)

    def submit_limit(self, owner: int, side: int, price: int, quantity: int):
        return self._send(owner, side, float(price), quantity)

    def submit_market(self, owner: int, side: int, quantity: int, limit_price=None):
        price = float(limit_price) if limit_price is not None else (math.inf if side > 0 else -math.inf)
        order_id, fills = self._send(owner, side, price, quantity)
        self.heap.remove(order_id)  # a market order does not rest
        return fills

    def cancel(self, order_id: int) -> int:
        self.heap.remove(order_id)
        return 0

    def cancel_all(self, owner: int) -> int:
        self.heap.withdraw_all(owner)
        self.owned[owner] = []
        return 0

    def open_orders(self, owner: int) -> list[int]:
        # Ids this owner sent that are still in a heap (filled ones are cleared out of them).
        live = [i for i in self.owned.get(owner, ()) if any(h.contains(i) for h in self.heap.heaps)]
        self.owned[owner] = live
        return live


class AbidesBook:
    """ABIDES's ``OrderBook`` behind the calls ``bench_book.drive`` makes.

    The book reports through its owner (the exchange agent): ``send_message`` receives an acceptance
    for an order that rests and an execution for each side of each match; the stand-in keeps the
    resting orders' remaining quantities from them, which is what ``open_orders`` and ``cancel`` need.
    """

    def __init__(self, abides) -> None:
        self.abides = abides
        self.current_time = 0
        self.mkt_open = 0
        self.book_logging = False
        self.book_log_depth = 10
        self.book = abides.OrderBook(self, "ABM")
        self.resting: dict[int, list] = {}  # order id -> [order, remaining]
        self.owned: dict[int, dict[int, None]] = {}  # owner -> its resting ids, in order sent
        self.fills: list = []
        self.incoming = None  # the id of the order being matched, whose executions are its fills

    def logEvent(self, *args, **kwargs) -> None:  # noqa: N802 (ABIDES's name)
        pass

    def send_message(self, recipient: int, message) -> None:
        order = message.order
        if isinstance(message, self.abides.OrderAcceptedMsg):
            self.resting[order.order_id] = [order, order.quantity]
            self.owned.setdefault(order.agent_id, {})[order.order_id] = None
        elif isinstance(message, self.abides.OrderExecutedMsg):
            entry = self.resting.get(order.order_id)
            if entry is None or order.order_id == self.incoming:
                self.fills.append(order)
                return
            entry[1] -= order.quantity
            if entry[1] <= 0:
                del self.resting[order.order_id]
                del self.owned[order.agent_id][order.order_id]

    def _limit(self, owner: int, side: int, price: int, quantity: int):
        self.current_time += 1
        order = self.abides.LimitOrder(owner, self.current_time, "ABM", quantity,
                                       self.abides.BID if side > 0 else self.abides.ASK, price)  # fmt: skip
        self.incoming, self.fills = order.order_id, []
        self.book.handle_limit_order(order)
        self.incoming = None
        return order.order_id, self.fills

    def submit_limit(self, owner: int, side: int, price: int, quantity: int):
        return self._limit(owner, side, int(price), quantity)

    def submit_market(self, owner: int, side: int, quantity: int, limit_price=None):
        if limit_price is not None:
            order_id, fills = self._limit(owner, side, int(limit_price), quantity)
            self.cancel(order_id)  # a market order does not rest
            return fills
        self.current_time += 1
        order = self.abides.MarketOrder(owner, self.current_time, "ABM", quantity,
                                        self.abides.BID if side > 0 else self.abides.ASK)  # fmt: skip
        self.incoming, self.fills = order.order_id, []
        self.book.handle_market_order(order)
        self.incoming = None
        return self.fills

    def cancel(self, order_id: int) -> int:
        entry = self.resting.pop(order_id, None)
        if entry is None:
            return 0
        del self.owned[entry[0].agent_id][order_id]
        self.book.cancel_order(entry[0], quiet=True)
        return entry[1]

    def cancel_all(self, owner: int) -> int:
        return sum(self.cancel(order_id) for order_id in list(self.owned.get(owner, ())))

    def open_orders(self, owner: int) -> list[int]:
        return list(self.owned.get(owner, ()))


def _import_abides():
    """ABIDES's order book and order classes, or None when ``abides_markets`` is not importable."""
    if importlib.util.find_spec("abides_markets") is None:
        return None
    from abides_markets.messages.orderbook import OrderAcceptedMsg, OrderExecutedMsg
    from abides_markets.order_book import OrderBook as AbidesOrderBook
    from abides_markets.orders import LimitOrder, MarketOrder, Side

    return types.SimpleNamespace(
        OrderBook=AbidesOrderBook,
        LimitOrder=LimitOrder,
        MarketOrder=MarketOrder,
        BID=Side.BID,
        ASK=Side.ASK,
        OrderAcceptedMsg=OrderAcceptedMsg,
        OrderExecutedMsg=OrderExecutedMsg,
    )


def _import_pymarketsim(path: Path):
    sys.path.insert(0, str(path))
    # Imported by modules these rows do not use (torch: the package's __init__ pulls in the eager
    # GaussianMeanReverting; fastcubicspline: HBL agents). Stubbed when missing, so a checkout runs
    # without them; a row that did use one would fail on the stub's missing attribute.
    for name, stub in (("fastcubicspline", {"FCS": None}), ("torch", {"Tensor": object})):
        if importlib.util.find_spec(name) is None:
            sys.modules[name] = types.SimpleNamespace(**stub)
    from marketsim.fourheap.fourheap import FourHeap
    from marketsim.fourheap.order import Order
    from marketsim.simulator.sampled_arrival_simulator import SimulatorSampledArrival

    return FourHeap, Order, SimulatorSampledArrival


def _timed(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def book_rows(ops: int, rounds: int, pymarketsim, abides=None) -> list[tuple[str, float]]:
    """M operations per second of each book on one stream (median over rounds)."""
    operations = draw_operations(np.random.default_rng(7), ops)
    engines: dict[str, object] = {"abm pure book": lambda: OrderBook()}
    if importlib.util.find_spec("numba") is not None:
        from abm.book.fast import FastOrderBook

        engines["abm compiled book"] = lambda: FastOrderBook()
        warm = FastOrderBook()  # compile the kernels outside the timing
        drive(
            operations[:2_000],
            warm.submit_limit,
            warm.submit_market,
            warm.cancel,
            warm.cancel_all,
            warm.open_orders,
        )
    if pymarketsim is not None:
        engines["PyMarketSim FourHeap"] = lambda: FourHeapBook(pymarketsim[0], pymarketsim[1])
    if abides is not None:
        engines["ABIDES OrderBook"] = lambda: AbidesBook(abides)
    seconds: dict[str, list[float]] = {name: [] for name in engines}
    for _ in range(rounds):
        for name, make in engines.items():
            book = make()
            calls = (book.submit_limit, book.submit_market, book.cancel, book.cancel_all, book.open_orders)
            seconds[name].append(_timed(lambda calls=calls: drive(operations, *calls)))
    return [(name, ops / statistics.median(times) / 1e6) for name, times in seconds.items()]


def _scenario(agents: int, steps: int, rate: float, engine: str):
    return config.scenario_from_dict(
        {
            "name": "zero_intelligence_equivalent",
            "steps": steps,
            "seed": 1,
            "market": {"book_engine": engine},
            "agents": [{"kind": "noise", "count": agents, "arrival_rate": rate}],
        }
    )


def model_rows(rounds: int, pymarketsim) -> list[tuple[str, str, float]]:
    """Seconds of each system on each PyMarketSim row (median over rounds)."""
    from abm.model import MarketModel

    engines = ["python"] + (["fast"] if importlib.util.find_spec("numba") is not None else [])
    if "fast" in engines:
        MarketModel(_scenario(10, 10, 0.5, "fast")).run()  # compile the kernels outside the timing
    rows = []
    for row, (agents, steps, rate) in ROWS.items():
        seconds: dict[str, list[float]] = {}
        for _ in range(rounds):
            if pymarketsim is not None:
                np.random.seed(1)  # PyMarketSim draws from numpy's and random's global state
                run = pymarketsim[2](num_background_agents=agents, sim_time=steps, lam=rate).run
                seconds.setdefault("PyMarketSim", []).append(_timed(run))
            for engine in engines:
                run = MarketModel(_scenario(agents, steps, rate, engine)).run
                seconds.setdefault(f"abm ({engine} book)", []).append(_timed(run))
        rows += [(row, name, statistics.median(times)) for name, times in seconds.items()]
    return rows


def main() -> None:
    """Print the book table and the whole-model table, with ratios to the peers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pymarketsim", type=Path, help="a local checkout of PyMarketSim's repository")
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-model", action="store_true", help="the book table only")
    options = parser.parse_args()
    pymarketsim = None
    if options.pymarketsim is None:
        print("no --pymarketsim: this project's side only. For the comparison:")
        print("  git clone https://github.com/dipplestix/pymarketsim   # into ./pymarketsim")
        print("  python benchmarks/bench_peers.py --pymarketsim pymarketsim\n")
    else:
        pymarketsim = _import_pymarketsim(options.pymarketsim)
    abides = _import_abides()
    if abides is None:
        print("ABIDES's order book: abides_markets is not importable (not installed): left out\n")

    books = book_rows(options.ops, options.rounds, pymarketsim, abides)
    peers = {name: rate for name, rate in books if name in ("PyMarketSim FourHeap", "ABIDES OrderBook")}
    print(f"Book, {options.ops:,} operations one call each (M ops/s, median of {options.rounds}):")
    for name, rate in books:
        ratios = "".join(f"  {rate / peer:5.1f}x {label.split()[0]}" for label, peer in peers.items())
        print(f"  {name:<24} {rate:6.3f}{ratios}")
    if options.skip_model:
        return
    print(f"\nWhole model on PyMarketSim's rows (seconds, median of {options.rounds}):")
    rows = model_rows(options.rounds, pymarketsim)
    reference = {row: seconds for row, name, seconds in rows if name == "PyMarketSim"}
    for row, name, seconds in rows:
        agents, steps, rate = ROWS[row]
        ratio = f"  {reference[row] / seconds:5.2f}x PyMarketSim's speed" if row in reference else ""
        print(f"  {row:<7} ({agents:,} agents, {steps:,} steps, lam {rate}) {name:<20} {seconds:7.2f}{ratio}")


if __name__ == "__main__":
    main()
