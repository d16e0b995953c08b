"""Boundaries of campaign_dialer/, read from its source (issue 24, "Boundaries wear away").

Three rules, checked on the AST of every module of the package:

1. No module imports an underscore name of another module (`from m import _x`, `import m._x`,
   relative imports and `__init__` re-exports included): what one module shares with another is
   public, so the next maintainer can tell a module's interface from its insides.
2. Imports sit at the top of a module. An import inside a function hides a dependency (and an
   import circle) from the reader and from import-linter's view of the order; the few deliberate
   lazy ones are in LAZY_ALLOWED below, each with its reason.
3. No import circle between modules, type-checker imports included: modules that import each
   other can be neither read nor changed alone (config and its parts were one such knot).

KNOWN_DEBT is empty: issue 24's rooms are cleared. An entry that no longer occurs fails the
stale test, so the list can only shrink back to empty.
"""

from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "campaign_dialer"


@dataclass(frozen=True, order=True)
class Violation:
    """One finding; `key` is stable across edits that only move lines."""

    path: str  # relative to the repository, e.g. "campaign_dialer/cli.py"
    kind: str  # "private", "lazy" or "circle"
    scope: str  # the dotted name; "lazy": the function's qualified name; "circle": its modules
    target: str  # "lazy": the imported module; "private": "", or "attribute" for `obj._x`
    line: int = 0

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.path, self.kind, self.scope, self.target)

    def __str__(self) -> str:
        if self.kind == "circle":
            return f"{self.path}: an import circle: {self.scope.replace(' ', ' <-> ')}"
        if self.kind == "lazy":
            what = f"imports {self.target} inside {self.scope}()"
        elif self.target == "attribute":
            what = f"reaches into {self.scope}, a private part of another module's object"
        else:
            what = f"imports the private name {self.scope}"
        return f"{self.path}:{self.line}: {what}"


# A named tuple's public methods and attributes carry an underscore (to leave field names free).
NAMEDTUPLE_API = frozenset({"_asdict", "_field_defaults", "_fields", "_make", "_replace"})


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _module_name(relpath: str) -> tuple[str, bool]:
    """campaign_dialer/a/b.py -> ("campaign_dialer.a.b", False); __init__.py -> (package, True)."""
    parts = relpath.removesuffix(".py").split("/")
    if parts[-1] == "__init__":
        return ".".join(parts[:-1]), True
    return ".".join(parts), False


def _is_our_module(dotted: str) -> bool:
    """campaign_dialer.x.y names a module or package of ours (not a name inside one)."""
    parts = dotted.split(".")
    if parts[0] != PACKAGE.name:
        return False
    path = PACKAGE.parent.joinpath(*parts)
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".")
    # A module's level 1 is its package; a package's __init__ is its own level 1.
    drop = node.level - 1 if is_package else node.level
    base = base[: len(base) - drop] if drop else base
    return ".".join([*base, node.module] if node.module else base)


def find_violations(source: str, relpath: str) -> list[Violation]:
    """Every underscore import and every import inside a function in one module's source."""
    tree = ast.parse(source, filename=relpath)
    module, is_package = _module_name(relpath)
    found: list[Violation] = []

    def imported(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        source_module = _absolute(node, module, is_package)
        return [f"{source_module}.{alias.name}" for alias in node.names]

    def check_private(node: ast.Import | ast.ImportFrom) -> None:
        for dotted in imported(node):
            if any(_is_private(part) for part in dotted.split(".")):
                found.append(Violation(relpath, "private", dotted, "", node.lineno))

    # Names this module binds to a module of ours (`from . import gate`, `import x.y as z`):
    # `gate._rnd(...)` reaches into a private part as surely as `from .gate import _rnd`.
    modules: dict[str, str] = {}
    libraries: set[str] = set()  # names bound to a library's objects (its `_x` is its business)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname and _is_our_module(alias.name):
                    modules[alias.asname] = alias.name
                elif not alias.name.startswith(PACKAGE.name):
                    libraries.add(alias.asname or alias.name.split(".")[0])
        elif isinstance(node, ast.ImportFrom):
            if not _absolute(node, module, is_package).startswith(PACKAGE.name):
                libraries.update(alias.asname or alias.name for alias in node.names)
            for alias, dotted in zip(node.names, imported(node), strict=True):
                if _is_our_module(dotted):
                    modules[alias.asname or alias.name] = dotted

    # Private names this module defines (functions, classes, attributes it assigns or reads on
    # self): `other._x` for any other `_x` is another module's object's insides (`gate._rnd()`).
    own: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            own.add(node.name)
        elif isinstance(node, ast.Attribute) and (
            isinstance(node.ctx, ast.Store)
            or (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"))
        ):
            own.add(node.attr)

    def check_attribute(node: ast.Attribute) -> None:
        owner = node.value
        if not (isinstance(owner, ast.Name) and _is_private(node.attr)):
            return
        if owner.id in modules:
            dotted = f"{modules[owner.id]}.{node.attr}"
            found.append(Violation(relpath, "private", dotted, "", node.lineno))
        elif owner.id not in ("self", "cls", *libraries) and node.attr not in own | NAMEDTUPLE_API:
            found.append(
                Violation(relpath, "private", f"{owner.id}.{node.attr}", "attribute", node.lineno)
            )

    def walk(node: ast.AST, scope: list[str], in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Attribute):
                check_attribute(child)
            if isinstance(child, ast.Import | ast.ImportFrom):
                check_private(child)
                if in_function:
                    if isinstance(child, ast.Import):
                        targets = [alias.name for alias in child.names]
                    else:  # `from pkg import sub` imports the module pkg.sub
                        source_module = _absolute(child, module, is_package)
                        subs = [d for d in imported(child) if _is_our_module(d)]
                        targets = subs or [source_module]
                    for target in targets:
                        found.append(
                            Violation(relpath, "lazy", ".".join(scope), target, child.lineno)
                        )
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                walk(child, [*scope, child.name], True)
            elif isinstance(child, ast.ClassDef):
                walk(child, [*scope, child.name], in_function)
            elif isinstance(child, ast.Lambda):
                walk(child, [*scope, "<lambda>"], True)
            else:
                walk(child, scope, in_function)

    walk(tree, [], False)
    return found


def import_graph(sources: dict[str, str]) -> dict[str, set[str]]:
    """Module -> the modules of `sources` it imports, anywhere in it: at the top, in a function,
    or only for a type checker (a type-only import back still makes two modules one to read)."""
    names = {_module_name(relpath)[0]: relpath for relpath in sources}
    graph: dict[str, set[str]] = {}
    for module, relpath in names.items():
        is_package = _module_name(relpath)[1]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(sources[relpath], filename=relpath)):
            if isinstance(node, ast.Import):
                deps.update(alias.name for alias in node.names if alias.name in names)
            elif isinstance(node, ast.ImportFrom):
                source_module = _absolute(node, module, is_package)
                for alias in node.names:
                    sub = f"{source_module}.{alias.name}"
                    if sub in names:
                        deps.add(sub)
                    elif source_module in names:
                        deps.add(source_module)
        graph[module] = deps - {module}
    return graph


def find_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Groups of modules that import each other, directly or round a loop (Tarjan's strongly
    connected components of more than one module), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(circles)


def package_sources() -> dict[str, str]:
    root = PACKAGE.parent
    return {
        path.relative_to(root).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def circle_violations(sources: dict[str, str]) -> list[Violation]:
    found = []
    for circle in find_circles(import_graph(sources)):
        path = circle[0].replace(".", "/")
        path = path + "/__init__.py" if f"{path}/__init__.py" in sources else path + ".py"
        found.append(Violation(path, "circle", " ".join(circle), ""))
    return found


def scan_package() -> list[Violation]:
    sources = package_sources()
    found: list[Violation] = []
    for relpath, source in sources.items():
        found.extend(find_violations(source, relpath))
    return found + circle_violations(sources)


# Deliberate lazy imports: (path, function, module) -> why it is imported where it is used.
LAZY_ALLOWED: dict[tuple[str, str, str], str] = {
    ("campaign_dialer/cli.py", "_dispatch", "campaign_dialer.commands"): (
        "CLI start-up: the commands load pandas, pyarrow, the engine and the store; "
        "`campaign-dialer --help`, --version and a usage error answer before any of it"
    ),
    ("campaign_dialer/cli.py", "_listen", "campaign_dialer.config_ops"): (
        "CLI start-up: config_ops loads pydantic, which `--help` and a usage error need not pay "
        "for; only `run --serve` parses a listen address"
    ),
    **{
        (path, function, module): (
            "psycopg and its pool load only for a campaign with a store URL (PostgreSQL); "
            "SQLite campaigns, check and --help never pay for them"
        )
        for path, function, module in (
            ("campaign_dialer/store/open.py", "_postgres", "campaign_dialer.store.postgres"),
            ("campaign_dialer/store/open.py", "open_team_history",
             "campaign_dialer.store.postgres"),
            ("campaign_dialer/store/open.py", "open_plan_store",
             "campaign_dialer.store.postgres.plan"),
            ("campaign_dialer/store/access.py", "where", "campaign_dialer.store.postgres.db"),
        )
    },
}

# What a room still owes: (room, path, kind, scope, target), kinds and fields as in
# Violation.key. Empty since issue 24's rooms were merged: a new entry needs a reason to exist.
KNOWN_DEBT: set[tuple[str, str, str, str, str]] = set()


def _allowed_keys() -> set[tuple[str, str, str, str]]:
    lazy = {(path, "lazy", function, module) for path, function, module in LAZY_ALLOWED}
    debt = {(path, kind, scope, target) for _room, path, kind, scope, target in KNOWN_DEBT}
    return lazy | debt


def test_no_private_imports_and_no_lazy_imports_beyond_the_allowlist() -> None:
    allowed = _allowed_keys()
    offending = [v for v in scan_package() if v.key not in allowed]
    assert not offending, "boundary violations:\n" + "\n".join(map(str, sorted(offending)))


def test_allowlist_and_debt_are_not_stale() -> None:
    """An entry nothing matches any more is removed, so the lists only ever shrink."""
    present = {v.key for v in scan_package()}
    stale = sorted(key for key in _allowed_keys() if key not in present)
    assert not stale, "remove from LAZY_ALLOWED/KNOWN_DEBT, no longer found:\n" + "\n".join(
        map(repr, stale)
    )


def test_every_allowed_lazy_import_says_why() -> None:
    for key, reason in LAZY_ALLOWED.items():
        assert len(reason.split()) >= 4, f"{key}: give the reason it is lazy"


def test_debt_names_its_room() -> None:
    rooms = {"compliance", "engine", "store", "report", "contacts", "planning", "forecast"}
    rooms |= {"results"}
    for entry in KNOWN_DEBT:
        assert entry[0] in rooms, entry


def _kinds(source: str, relpath: str = "campaign_dialer/pkg/mod.py") -> list[tuple[str, str]]:
    return [
        (v.kind, v.scope if v.kind == "private" else f"{v.scope}:{v.target}")
        for v in find_violations(textwrap.dedent(source), relpath)
    ]


def test_the_check_reports_each_kind_of_violation() -> None:
    source = """
        import os
        from typing import TYPE_CHECKING
        from .gate import _rnd, Gate
        from .. import _helpers
        import campaign_dialer.store._impl
        from campaign_dialer.engine import __version__

        if TYPE_CHECKING:
            from .gate import Other

        def f():
            import json
            from .plan import plan_columns
            return json

        class C:
            async def m(self):
                from .. import engine

            def n(self):
                def inner():
                    import pandas
                return inner
    """
    assert _kinds(source) == [
        ("private", "campaign_dialer.pkg.gate._rnd"),
        ("private", "campaign_dialer._helpers"),
        ("private", "campaign_dialer.store._impl"),
        ("lazy", "f:json"),
        ("lazy", "f:campaign_dialer.pkg.plan"),
        ("lazy", "C.m:campaign_dialer.engine"),
        ("lazy", "C.n.inner:pandas"),
    ]


def test_reaching_into_another_module_s_private_parts_is_reported() -> None:
    source = """
        import sys
        from . import wire as w
        from .wire import Gate

        class Lists:
            def __init__(self):
                self._paths = ()

            @classmethod
            def load(cls, paths):
                out = cls()
                out._paths = tuple(paths)
                out._stamps = [sys._getframe()]
                return out

        def plan(gate: Gate, row):
            facts = row._replace(x=1)
            return w._CODES, gate._rnd(row), Gate._cache, facts._asdict(), row._paths
    """
    assert _kinds(source, "campaign_dialer/sandbox/app.py") == [
        ("private", "campaign_dialer.sandbox.wire._CODES"),
        ("private", "gate._rnd"),
        ("private", "Gate._cache"),
    ]


def test_an_import_circle_is_reported_even_through_a_type_checker_import() -> None:
    """The circle config had: config imported config_store (lazily, in a property) and
    config_store imported config back for a type."""
    sources = {
        "campaign_dialer/__init__.py": "",
        "campaign_dialer/config.py": "def url(c):\n    from . import config_store\n",
        "campaign_dialer/config_store.py": textwrap.dedent("""
            from typing import TYPE_CHECKING
            if TYPE_CHECKING:
                from campaign_dialer.config import Campaign
        """),
        "campaign_dialer/cli.py": "from campaign_dialer import config\n",
    }
    assert circle_violations(sources) == [
        Violation(
            "campaign_dialer/config.py", "circle",
            "campaign_dialer.config campaign_dialer.config_store", "",
        )
    ]
    del sources["campaign_dialer/config_store.py"]
    assert circle_violations(sources) == []


def test_an_init_re_exporting_a_private_name_is_reported() -> None:
    source = "from .gate import _rnd as rnd\nfrom . import gate\n"
    assert _kinds(source, "campaign_dialer/compliance/__init__.py") == [
        ("private", "campaign_dialer.compliance.gate._rnd"),
    ]


def test_a_violation_fails_the_package_check() -> None:
    """The package-wide assertion itself fails on a violation nothing allows."""
    module = "campaign_dialer/cli.py"
    violations = find_violations("def main():\n    from .config import _load\n", module)
    allowed = _allowed_keys()
    assert [v for v in violations if v.key not in allowed] == [
        Violation(module, "private", "campaign_dialer.config._load", "", 2),
        Violation(module, "lazy", "main", "campaign_dialer.config", 2),
    ]


if __name__ == "__main__":  # list every finding: python tests/test_boundaries.py
    for violation in scan_package():
        print(violation)
