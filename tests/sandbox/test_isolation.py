"""The sandbox is the dialer's independent opponent: it must not import the dialer."""

from __future__ import annotations

import ast
from pathlib import Path

from campaign_dialer import sandbox


def test_sandbox_imports_nothing_else_from_the_project() -> None:
    offenders = []
    for path in Path(sandbox.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            for name in names:
                inside = name.startswith("campaign_dialer.sandbox") or name == "campaign_dialer"
                if (name.startswith("campaign_dialer") and not inside) or name.startswith(".."):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []
