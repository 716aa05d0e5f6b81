"""The dataset dependency graph (``depends_on``): cycles and the restore order (BP100-OPS-12, R23)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

CRITICALITY_RANK = {"vital": 0, "critical": 1, "important": 2, "standard": 3}


def find_cycle(graph: Mapping[str, Sequence[str]]) -> list[str] | None:
    """A dependency cycle as a path ``[a, b, ..., a]``, or None. Unknown names are ignored."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in graph.get(node, ()):
            if target not in graph:
                continue
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def restore_order(graph: Mapping[str, Sequence[str]], criticality: Mapping[str, str]) -> list[str]:
    """Datasets in an order that restores every dependency first; among those ready at the same
    time, the most critical first, then by name. The graph must be acyclic."""
    remaining = {name: {d for d in deps if d in graph} for name, deps in graph.items()}
    order: list[str] = []
    while remaining:
        ready = [name for name, deps in remaining.items() if not deps]
        if not ready:
            raise ValueError("dependency cycle: validate the establishment first")
        ready.sort(key=lambda name: (CRITICALITY_RANK.get(criticality.get(name, ""), 9), name))
        chosen = ready[0]
        order.append(chosen)
        del remaining[chosen]
        for deps in remaining.values():
            deps.discard(chosen)
    return order
