"""The fraction solver of ``pairs merge``: the largest output under every cap, as a max flow.

``--input_fraction_limits`` and ``--pair_type_max_fractions TYPE=F`` cap shares of the
output, which depends on the output's size; ``solve_counts`` finds the largest size N for
which every cap (floor(F * N), caps nested by pattern) can hold, and how many pairs each
(input, pair type) group keeps, so that groups competing for a full cap keep about the
same share of their pairs. Exact, with ``fractions.Fraction``; deterministic.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from fractions import Fraction
from typing import Any


def matches(pattern: str, pair_type: str) -> bool:
    return pair_type.startswith(pattern[:-1]) if pattern.endswith("*") else pair_type == pattern


class _Network:
    """Max flow (Edmonds-Karp, deterministic): source -> [input cap] -> group -> [type caps, inner to outer] -> sink.

    ``rooms`` are the cap edges' capacities: ``("input", i)`` and ``("type", pattern)``; a group under no
    input cap starts at the source, one under no type cap ends at the sink.
    """

    def __init__(self, keys: list[tuple[int, str]], capacities: list[int], rooms: dict[tuple[str, Any], int]):
        self.to: list[int] = []
        self.cap: list[int] = []
        self.adj: list[list[int]] = [[], []]  # node 0: source, node 1: sink
        node = {key: self._node() for key in rooms}
        patterns = [pattern for kind, pattern in rooms if kind == "type"]
        for (kind, name), room in rooms.items():
            if kind == "input":
                self._edge(0, node[kind, name], room)
            else:  # type caps nest: each flows into the next larger pattern
                outer = _innermost(name[:-1] if name.endswith("*") else name, patterns, exclude=name)
                self._edge(node[kind, name], node["type", outer] if outer else 1, room)
        self.groups = [self._edge(node.get(("input", i), 0), node["type", inner] if (inner := _innermost(t, patterns)) else 1, c)
                       for (i, t), c in zip(keys, capacities)]

    def _node(self) -> int:
        self.adj.append([])
        return len(self.adj) - 1

    def _edge(self, u: int, v: int, capacity: int) -> int:
        self.to += [v, u]
        self.cap += [capacity, 0]
        self.adj[u].append(len(self.to) - 2)
        self.adj[v].append(len(self.to) - 1)
        return len(self.to) - 2

    def _reach(self, stop_at_sink: bool = True) -> dict[int, int]:
        """Nodes reachable from the source in the residual graph -> the edge reaching them (BFS)."""
        parent, queue = {0: -1}, deque([0])
        while queue and not (stop_at_sink and 1 in parent):
            u = queue.popleft()
            for e in self.adj[u]:
                if self.cap[e] > 0 and self.to[e] not in parent:
                    parent[self.to[e]] = e
                    queue.append(self.to[e])
        return parent

    def run(self, limit: int) -> int:
        """Push up to ``limit`` more units along shortest augmenting paths; returns how many."""
        pushed = 0
        while pushed < limit and 1 in (parent := self._reach()):
            path, v = [], 1
            while v != 0:
                path.append(parent[v])
                v = self.to[parent[v] ^ 1]
            push = min(limit - pushed, *(self.cap[e] for e in path))
            for e in path:
                self.cap[e] -= push
                self.cap[e ^ 1] += push
            pushed += push
        return pushed

    def flows(self) -> list[int]:
        return [self.cap[e ^ 1] for e in self.groups]

    def blocked(self) -> list[bool]:
        """After a max flow: which groups no augmenting path could raise (their caps are full)."""
        reach = self._reach(stop_at_sink=False)
        return [not (self.to[e ^ 1] in reach and self.to[e] not in reach) for e in self.groups]


def _innermost(pair_type: str, patterns: Sequence[str], exclude: str | None = None) -> str | None:
    """The most specific cap pattern matching ``pair_type`` (the exact name, else the longest prefix)."""
    if exclude is None and pair_type in patterns:
        return pair_type
    prefixes = [p for p in patterns if p.endswith("*") and p != exclude and pair_type.startswith(p[:-1])]
    return max(prefixes, key=len, default=None)


def solve_counts(keys: list[tuple[int, str]], sizes: list[int], fixed: list[bool], upper: int,
                 input_caps: dict[int, Fraction], type_caps: dict[str, Fraction]) -> list[int]:
    """How many pairs to keep of each (input, pair type) group, ``keys[k]`` holding ``sizes[k]``.

    Size: the largest N <= ``upper`` such that counts exist with every group within its size, every
    ``fixed`` group whole (they must total <= ``upper``) and every cap exact: the pairs under a cap are at
    most floor(F * N). Input caps partition the groups and type patterns nest, so one max flow decides
    whether N is feasible. Feasibility is not monotone in N (two inputs capped at 0.5 holding 3 pairs each:
    6 works, 5 does not), so N goes down from ``upper``, jumping to fixed + the flow reached, which no
    smaller N can exceed.
    Shares (progressive filling): all other groups keep the same share of their pairs, at most
    ceil(size * L / largest size) at level L, raised together; a group whose caps are full stops there
    and the rest rise on, until the output reaches N. The last units of a level go to earlier groups. Where
    stopping groups would make N unreachable (caps crossing inputs and types), every group instead gets
    the lowest common level that reaches N.
    """
    fixed_total = sum(size for size, whole in zip(sizes, fixed) if whole)
    free = [k for k in range(len(keys)) if not fixed[k]]
    largest = max((sizes[k] for k in free), default=0)

    def network(total: int, active: list[int], level: int | None, committed: dict[int, int]) -> _Network:
        rooms = {("input", i): f.numerator * total // f.denominator - sum(n for k, n in committed.items() if keys[k][0] == i)
                 for i, f in input_caps.items()}
        rooms.update({("type", p): f.numerator * total // f.denominator - sum(n for k, n in committed.items() if matches(p, keys[k][1]))
                      for p, f in type_caps.items()})
        capacities = [sizes[k] if level is None else -(-sizes[k] * level // largest) for k in active]
        return _Network([keys[k] for k in active], capacities, rooms)

    total = upper
    while total > fixed_total:
        reached = network(total, free, None, {}).run(total - fixed_total)
        if reached >= total - fixed_total:
            break
        total = min(total - 1, fixed_total + reached)
    counts = [size if whole else 0 for size, whole in zip(sizes, fixed)]
    if total - fixed_total <= 0:
        return counts

    def lowest(low: int, active: list[int], committed: dict[int, int], demand: int, stop_when_blocked: bool) -> int | None:
        """The lowest level >= low where the flow reaches ``demand`` (or, with stop_when_blocked, a group stops)."""
        def event(level: int) -> bool:
            got = network(total, active, level, committed).run(demand)
            return got >= demand or (stop_when_blocked and got < sum(-(-sizes[k] * level // largest) for k in active))
        if not event(largest):
            return None
        high = largest
        while low < high:
            middle = (low + high) // 2
            low, high = (low, middle) if event(middle) else (middle + 1, high)
        return low

    def finish(level: int, active: list[int], committed: dict[int, int], demand: int) -> list[int]:
        net = network(total, active, level - 1, committed)
        reached = net.run(demand)
        for e, k in zip(net.groups, active):  # raise every group one level, keeping the flow so far
            net.cap[e] += -(-sizes[k] * level // largest) - -(-sizes[k] * (level - 1) // largest)
        net.run(demand - reached)
        for k, count in [*committed.items(), *zip(active, net.flows())]:
            counts[k] = count
        return counts

    active, committed, level = list(free), {}, 0
    while active:
        demand = total - fixed_total - sum(committed.values())
        level = lowest(level, active, committed, demand, stop_when_blocked=True)
        if level is None:
            break
        net = network(total, active, level, committed)
        if net.run(demand) >= demand:
            return finish(level, active, committed, demand)
        blocked = net.blocked()
        committed.update((k, flow) for k, flow, stop in zip(active, net.flows(), blocked) if stop)
        active = [k for k, stop in zip(active, blocked) if not stop]
    demand = total - fixed_total
    return finish(lowest(1, free, {}, demand, stop_when_blocked=False), free, {}, demand)
