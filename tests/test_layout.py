"""The house rules a newcomer relies on to find their way (docs/architecture.md): short modules, small folders,
each task's cli.py only parsing and printing, and no import circles anywhere in seqapp/ (imports inside
functions count: a circle hidden in a function is still a circle)."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqapp"
MODULES = sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The seqapp modules `path` imports, anywhere in it."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    known = {module_name(p) for p in MODULES}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parent + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        if isinstance(node, ast.ImportFrom) and base.startswith("seqapp") and base not in known:
            pytest.fail(f"{path.relative_to(PACKAGE.parent)}:{node.lineno} imports {base}, which does not exist")
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name and not name.startswith(target + "."):  # a package's own __init__
                found.add(target)
    return found


def test_no_import_circles():
    graph = {module_name(p): imports_of(p) for p in MODULES}
    state: dict[str, str] = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                pytest.fail("import circle: " + " -> ".join(trail[trail.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_speech_stages_import_downwards_only():
    # docs/architecture.md: data <- voices <- models <- settings <- listening <- training <- cli
    stages = ["data", "voices", "models", "settings", "flags", "listening", "training", "cli"]
    for path in (PACKAGE / "speech").rglob("*.py"):
        parts = module_name(path).split(".")
        if len(parts) < 3:
            continue
        stage = stages.index(parts[2])
        for target in imports_of(path):
            other = target.split(".")
            if other[:2] == ["seqapp", "speech"] and len(other) > 2:
                assert stages.index(other[2]) <= stage, f"{module_name(path)} imports {target}, a later stage"


def test_modules_are_short_and_folders_small():
    long = [f"{p.relative_to(PACKAGE.parent)}: {n} lines" for p in MODULES
            if (n := len(p.read_text().splitlines())) > 400]
    assert not long, "modules over 400 lines: " + ", ".join(long)
    folders = {p.parent for p in MODULES}  # __init__ and __main__ are plumbing, not modules a reader opens
    crowded = [f"{d.relative_to(PACKAGE.parent)}: {n}" for d in folders
               if (n := sum(1 for p in d.glob("*.py") if not p.name.startswith("__"))) > 12]
    assert not crowded, "folders over 12 modules: " + ", ".join(crowded)


def test_each_task_cli_only_parses_and_prints():
    for cli in PACKAGE.glob("*/cli.py"):
        assert len(cli.read_text().splitlines()) <= 300, f"{cli}: over 300 lines"
        tree = ast.parse(cli.read_text())
        classes = [n.name for n in ast.walk(tree) if isinstance(n, ast.ClassDef)]
        assert not classes, f"{cli} defines {classes}: logic belongs in the task's stages"
