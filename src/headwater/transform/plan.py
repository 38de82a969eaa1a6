"""Which dbt nodes a pipeline builds, and the Airflow tasks that build them in order.

One task per model, seed and snapshot; each one's tests in a task right after it, so a failing test
stops everything downstream. A test touching several models runs after all of them, in the task of
the model it is declared on (``relationships``) or of the last of them (a singular test). Tests on
sources alone run first, before any model reads the sources. Selection follows a documented subset
of dbt's syntax, checked when the DAG is parsed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from headwater.errors import ConfigError
from headwater.transform.manifest import DbtNode, DbtProject

COMMANDS = {"model": "run", "seed": "seed", "snapshot": "snapshot"}
SOURCE_TESTS = "test__sources"
_METHODS = ("tag", "path", "resource_type", "fqn")
_TASK_CHARS = re.compile(r"[^A-Za-z0-9_.-]")


@dataclass(frozen=True)
class NodeTask:
    """One Airflow task: a dbt command over some nodes, after the tasks in ``upstream``."""

    task_id: str
    command: str  # run | seed | snapshot | test
    nodes: tuple[DbtNode, ...]
    upstream: tuple[str, ...]

    @property
    def selectors(self) -> list[str]:
        return [n.selector for n in self.nodes]


def select_nodes(project: DbtProject, select: Sequence[str] = (), exclude: Sequence[str] = ()) -> set[str]:
    """The unique ids of the executable nodes ``select`` picks (everything when empty), minus ``exclude``."""
    candidates = {n.unique_id: n for n in project.nodes.values() if n.resource_type in COMMANDS}
    parents = {uid: {d for d in n.depends_on if d in candidates} for uid, n in candidates.items()}
    chosen = set(candidates) if not select else set()
    for item in select:
        chosen |= _match(item, candidates, parents, "select")
    for item in exclude:
        chosen -= _match(item, candidates, parents, "exclude")
    return {uid for uid in chosen if not candidates[uid].ephemeral}


def plan_tasks(project: DbtProject, selected: set[str]) -> list[NodeTask]:
    """The tasks for ``selected`` in topological order, tests attached as the module docstring says."""
    parents = _executable_parents(project)
    order = _topological(selected, parents)
    position = {uid: i for i, uid in enumerate(order)}
    tests_of: dict[str, list[DbtNode]] = {}
    source_tests: list[DbtNode] = []
    test_parents: dict[str, set[str]] = {}
    for test in project.tests():
        built = _resolve(test.depends_on, project, parents)
        if not built:  # reads sources only (maybe through ephemeral models)
            source_tests.append(test)
            continue
        chosen = built & selected
        if not chosen:
            continue
        last = max(chosen, key=position.__getitem__)
        attached = test.attached_node
        if attached in chosen and not _closure({attached}, _children(parents)) & chosen:
            last = attached  # declared on a model none of its other parents descends from
        tests_of.setdefault(last, []).append(test)
        test_parents.setdefault(last, set()).update(chosen)
    tasks: list[NodeTask] = []
    if source_tests:
        tasks.append(NodeTask(SOURCE_TESTS, "test", tuple(sorted(source_tests, key=_key)), ()))
    done: dict[str, str] = {}  # unique id -> the task after which its dependents may start
    for uid in order:
        node = project.nodes[uid]
        run_id = _task_id(COMMANDS[node.resource_type], node)
        upstream = sorted({done[p] for p in parents.get(uid, set()) if p in done})
        if not upstream and source_tests:
            upstream = [SOURCE_TESTS]
        tasks.append(NodeTask(run_id, COMMANDS[node.resource_type], (node,), tuple(upstream)))
        done[uid] = run_id
        if uid in tests_of:
            test_upstream = sorted({_run_task(project.nodes[p]) for p in test_parents[uid]})
            test_id = _task_id("test", node)
            tasks.append(NodeTask(test_id, "test", tuple(sorted(tests_of[uid], key=_key)), tuple(test_upstream)))
            done[uid] = test_id
    return _ordered(tasks)


def _ordered(tasks: list[NodeTask]) -> list[NodeTask]:
    """``tasks`` with every task after its upstream tasks (stable otherwise)."""
    by_id = {t.task_id: t for t in tasks}
    placed: dict[str, NodeTask] = {}

    def place(task: NodeTask) -> None:
        if task.task_id in placed:
            return
        for upstream in task.upstream:
            place(by_id[upstream])
        placed[task.task_id] = task

    for task in tasks:
        place(task)
    return list(placed.values())


def _key(node: DbtNode) -> str:
    return node.unique_id


def _task_id(command: str, node: DbtNode) -> str:
    return _TASK_CHARS.sub("_", f"{command}__{node.name}")


def _run_task(node: DbtNode) -> str:
    return _task_id(COMMANDS[node.resource_type], node)


def _executable_parents(project: DbtProject) -> dict[str, set[str]]:
    """Each executable node's executable parents, looking through ephemeral models."""
    return {n.unique_id: _resolve(n.depends_on, project, {}) for n in project.executable()}


def _resolve(depends: Iterable[str], project: DbtProject, _cache: dict[str, set[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(depends)
    seen: set[str] = set()
    while stack:
        uid = stack.pop()
        if uid in seen:
            continue
        seen.add(uid)
        node = project.nodes.get(uid)
        if node is None or node.resource_type not in COMMANDS:
            continue  # a source, a package's node, a disabled node: not built here
        if node.ephemeral:
            stack.extend(node.depends_on)
        else:
            found.add(uid)
    return found


def _topological(selected: set[str], parents: dict[str, set[str]]) -> list[str]:
    order: list[str] = []
    state: dict[str, int] = {}

    def visit(uid: str) -> None:
        if state.get(uid) == 2:
            return
        if state.get(uid) == 1:
            raise ConfigError(f"dbt graph has a cycle through {uid}")
        state[uid] = 1
        for parent in sorted(parents.get(uid, set()) & selected):
            visit(parent)
        state[uid] = 2
        order.append(uid)

    for uid in sorted(selected):
        visit(uid)
    return order


def _match(item: str, candidates: dict[str, DbtNode], parents: dict[str, set[str]], key: str) -> set[str]:
    text = item.strip()
    ancestors, descendants = text.startswith("+"), text.endswith("+")
    text = text.strip("+")
    method, _, value = text.rpartition(":")
    if method and method not in _METHODS:
        raise ConfigError(
            f"dbt {key} {item!r}: unknown method {method!r} (headwater reads {', '.join(_METHODS)}, "
            "a name, and + before or after)"
        )
    matched = {uid for uid, node in candidates.items() if _matches(node, method, value)}
    if not matched:
        raise ConfigError(f"dbt {key} {item!r} matches no model, seed or snapshot of the project")
    result = set(matched)
    if ancestors:
        result |= _closure(matched, parents)
    if descendants:
        result |= _closure(matched, _children(parents))
    return result


def _children(parents: dict[str, set[str]]) -> dict[str, set[str]]:
    children: dict[str, set[str]] = {}
    for child, ps in parents.items():
        for p in ps:
            children.setdefault(p, set()).add(child)
    return children


def _matches(node: DbtNode, method: str, value: str) -> bool:
    if method == "tag":
        return value in node.tags
    if method == "path":
        return node.path == value or node.path.startswith(value.rstrip("/") + "/")
    if method == "resource_type":
        return node.resource_type == value
    if method == "fqn" or not method:
        dotted = ".".join(node.fqn)
        return node.name == value or dotted == value or dotted.startswith(value + ".") or value in node.fqn[1:-1]
    return False


def _closure(start: set[str], edges: dict[str, set[str]]) -> set[str]:
    found: set[str] = set()
    stack = list(start)
    while stack:
        for nxt in edges.get(stack.pop(), set()):
            if nxt not in found:
                found.add(nxt)
                stack.append(nxt)
    return found
