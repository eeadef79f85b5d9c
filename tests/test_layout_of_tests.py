"""The test suites share code through ``tests/helpers/``, never by importing each other.

Importing from another test module runs (and may collect) that module's tests a second time,
ties unrelated suites together and hides what is shared; importing from ``conftest`` does the
same with pytest's own plugin. Shared code lives in ``tests/helpers/`` (issue #12). This scan
keeps it so for ``tests/`` and ``scripts/`` (the benchmarks use the load generator).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCANNED = [ROOT / "tests", ROOT / "scripts"]


def _forbidden(module: str) -> bool:
    """A test module or a conftest: ``tests.test_x``, ``tests.security.conftest``, …"""
    parts = module.split(".")
    return parts[0] == "tests" and any(p.startswith("test_") or p == "conftest" for p in parts)


def forbidden_imports(source: str, filename: str = "<source>") -> list[str]:
    """Each import of a test module or a conftest in ``source``, as ``line: module``."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            modules = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
            bad = [m for m in modules if _forbidden(m)]
            if bad:
                found.append(f"{node.lineno}: {bad[0]}")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: {a.name}" for a in node.names if _forbidden(a.name)]
    return found


def test_the_scan_finds_every_spelling_of_an_import_from_a_test_module() -> None:
    source = "\n".join(
        [
            "from tests.test_vk_callback import vk_settings",
            "from tests.conftest import payload",
            "from tests.security.conftest import x",
            "from tests import test_ui",
            "import tests.test_ui_login",
            "def f():",
            "    from tests.test_vk_bot import (",
            "        say,",
            "    )",
            "from tests.helpers.vk import vk_settings",
            "from tests.helpers.payloads import payload",
            "import pytest",
        ]
    )
    assert forbidden_imports(source) == [
        "1: tests.test_vk_callback",
        "2: tests.conftest",
        "3: tests.security.conftest",
        "4: tests.test_ui",
        "5: tests.test_ui_login",
        "7: tests.test_vk_bot",
    ]


def test_no_module_imports_from_a_test_module_or_a_conftest() -> None:
    offenders = []
    for directory in SCANNED:
        for path in sorted(directory.rglob("*.py")):
            for hit in forbidden_imports(path.read_text(encoding="utf-8"), str(path)):
                offenders.append(f"{path.relative_to(ROOT)}:{hit}")
    assert offenders == [], "move the shared names into tests/helpers/: " + ", ".join(offenders)


def test_the_top_of_tests_holds_only_test_modules_and_the_conftest() -> None:
    """Shared harness code goes to ``tests/helpers/``, not next to the suites."""
    loose = [
        p.name
        for p in (ROOT / "tests").glob("*.py")
        if not p.name.startswith("test_") and p.name != "conftest.py"
    ]
    assert loose == []
