"""The import graph of the package, lazy imports included, has no cycle and no upward edge.

Every module's AST is read (our sources, never executed): ``import``/``from ... import``
statements anywhere (module level and inside functions; not the annotation-only ones under
``if TYPE_CHECKING:``), and string constants naming one of our modules
(``importlib.import_module`` maps of the package facades). Layers (docs/dialects.md,
DESIGN.md), each importing only layers below it or its own:

1. agent.actions, agent.geometry, agent.errors, agent.keys
2. vlm.base, tools.base
3. agent.dialects.*; backends vlm.*; devices tools.* -- and no vlm module imports dialects, no
   dialect imports a backend or a device, no device imports vlm
4. the loop and its stages, trajectories, secrets, resume, policies, human control (kill and
   pause switches), effects, viewer, overlay, animation, evaluation, export, replay; the
   benchmark environments (envs.*)
5. composition: vlm.registry, the vlm and agent facades, agent.cli*, scenarios.* -- and only
   the CLI (and scenarios themselves) import scenarios
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"agent": "pixelpilot.agent", "vlm": "pixelpilot.vlm", "tools": "pixelpilot.tools",
            "scenarios": "pixelpilot.scenarios", "envs": "pixelpilot.envs"}  # fmt: skip
BOTTOM = {"agent.actions", "agent.geometry", "agent.errors", "agent.keys"}
BOUNDARIES = {"vlm.base", "tools.base"}
LOOP = {"agent.loop", "agent.trajectory", "agent.trajectory_compat", "agent.viewer",
        "agent.overlay", "agent.animate", "agent.evaluate", "agent.export", "agent.replay",
        "agent.secrets", "agent.resume", "agent.stages", "agent.policy", "agent.control",
        "agent.effects", "agent.jobs", "agent.workers", "agent.workers_local", "agent.workers_ray",
        "agent.train_data", "agent.train_batch", "agent.train", "agent.train_loop",
        "agent.train_grounding"}  # fmt: skip
COMPOSITION = {"vlm.registry", "vlm", "agent", "agent.cli", "agent.cli_model", "agent.cli_traj",
               "agent.cli_scenario", "agent.cli_bench", "agent.cli_batch", "agent.cli_common",
               "agent.cli_control", "agent.cli_prompt", "agent.cli_train", "agent.cli_demo"}  # fmt: skip


def modules() -> dict[str, Path]:
    """Module name (without ``pixelpilot.``) -> source file."""
    out = {}
    for top in PACKAGES:
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def layer(name: str) -> int:
    if name in BOTTOM:
        return 1
    if name in BOUNDARIES:
        return 2
    if name in COMPOSITION or name.split(".")[0] == "scenarios":
        return 5
    if name in LOOP or name.split(".")[0] == "envs":  # benchmark environments sit on the loop
        return 4
    if name.startswith(("agent.dialects", "vlm", "tools")):
        return 3
    raise AssertionError(f"{name} has no layer: add it to tests/test_layers.py")


def imports(name: str, path: Path, known: set[str]) -> Iterator[str]:
    """Our modules ``name`` imports, anywhere in its source."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in ast.walk(tree):  # annotations only: no runtime edge
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    run_as_main = {  # ["python", "-m", "pixelpilot.x"]: a new process, not an import
        id(b) for n in ast.walk(tree) if isinstance(n, (ast.List, ast.Tuple))
        for a, b in zip(n.elts, n.elts[1:], strict=False)
        if isinstance(a, ast.Constant) and a.value == "-m"
    }  # fmt: skip
    for node in ast.walk(tree):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, base] if base else up)
                base = "pixelpilot." + base
            targets = [f"{base}.{a.name}" for a in node.names] + [base]
        elif (isinstance(node, ast.Constant) and isinstance(node.value, str)
              and id(node) not in run_as_main):  # fmt: skip
            targets = [node.value]
        for t in targets:
            if not t.startswith("pixelpilot."):
                continue
            mod = t.removeprefix("pixelpilot.")
            while mod and mod not in known:  # `from pkg import name`: the deepest module
                mod = mod.rpartition(".")[0]
            if mod and mod != name:
                yield mod


def graph() -> dict[str, set[str]]:
    mods = modules()
    return {n: set(imports(n, p, set(mods))) for n, p in mods.items()}


def _allowed(a: str, b: str) -> str | None:
    """Why the edge a -> b breaks the layering, or None."""
    la, lb = layer(a), layer(b)
    if lb > la:
        return f"layer {la} imports layer {lb}"
    if b.split(".")[0] == "scenarios" and not (
        a.split(".")[0] == "scenarios" or a.startswith("agent.cli")
    ):
        return "only the CLI wires scenarios in"
    if la == lb == 3:
        if a.startswith("vlm") and b.startswith("agent.dialects"):
            return "a backend imports a dialect"
        if a.startswith("agent.dialects") and b.startswith(("vlm", "tools")):
            return "a dialect imports a backend or a device"
        if a.startswith("tools") and b.startswith("vlm"):
            return "a device imports a backend"
    return None


def test_no_upward_edge() -> None:
    bad = [f"{a} -> {b}: {why}" for a, bs in graph().items() for b in sorted(bs)
           if (why := _allowed(a, b))]  # fmt: skip
    assert not bad, "\n".join(bad)


def test_no_cycle() -> None:
    g = graph()
    seen: dict[str, int] = {}  # 1 on the stack, 2 done
    cycles = []

    def visit(n: str, stack: list[str]) -> None:
        seen[n] = 1
        for m in sorted(g[n]):
            if seen.get(m) == 1:
                cycles.append(" -> ".join([*stack[stack.index(m) :], m]))
            elif m not in seen:
                visit(m, [*stack, m])
        seen[n] = 2

    for n in sorted(g):
        if n not in seen:
            visit(n, [n])
    assert not cycles, "\n".join(cycles)


def test_the_graph_is_read_for_real() -> None:
    g = graph()
    assert len(g) > 60
    assert "agent.dialects.engine" in g["agent.dialects.qwen2vl"]
    assert "agent.errors" in g["agent.actions"]  # a plain from-import
    assert "vlm.local" in g["vlm"]  # the facade's lazy import_module map
    assert "agent.dialects.check" in g["agent.dialects"]
    assert _allowed("vlm.local", "agent.dialects.engine") == "a backend imports a dialect"
    assert _allowed("agent.actions", "vlm.base") == "layer 1 imports layer 2"
