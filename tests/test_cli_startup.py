"""Issue #13, instant CLI: a command line imports only the sub-command group it names.

Measured in scripts/bench/cli_startup.py (timings are not tests); here, what makes it fast:
the modules a command imports, and the help text ``otklik --help`` shows for groups it did
not import, which must be the group's own.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from otklik.cli import GROUPS, load_group

PAYLOAD = Path(__file__).parent / "payloads" / "vk" / "message_new.json"
HEAVY = ("aiogram", "sqlalchemy.orm", "fastapi", "vk_api", "maxapi", "uvicorn")


def imported_by(*argv: str) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run ``otklik ARGV`` in a fresh interpreter; its result and the modules it imported."""
    script = (
        "import sys, json, atexit\n"
        "atexit.register(lambda: print('\\nMODULES' + json.dumps(sorted(sys.modules)),"
        " file=sys.stderr))\n"
        f"sys.argv = ['otklik', *{list(argv)!r}]\n"
        "from otklik.cli import main\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    marker = done.stderr.rindex("MODULES")
    return done, set(json.loads(done.stderr[marker + len("MODULES") :]))


@pytest.mark.parametrize(
    "argv",
    [("--help",), ("triage", "--channel", "vk", str(PAYLOAD)), ("kb", "search", "свет")],
)
def test_light_commands_import_no_channel_library_orm_or_web_framework(
    argv: tuple[str, ...],
) -> None:
    done, modules = imported_by(*argv)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY or m == "sqlalchemy.orm")
    assert heavy == []


def test_help_lists_every_group_without_importing_it() -> None:
    done, modules = imported_by("--help")
    for name, (module, _attribute, _summary) in GROUPS.items():
        assert name in done.stdout
        assert module not in modules


def test_a_named_group_is_the_real_one() -> None:
    done, modules = imported_by("telegram", "--help")
    assert done.returncode == 0 and "poll" in done.stdout
    assert "aiogram" in modules


@pytest.mark.parametrize("name", sorted(GROUPS))
def test_the_help_shown_for_a_group_is_its_own(name: str) -> None:
    assert load_group(name).info.help == GROUPS[name][2]
