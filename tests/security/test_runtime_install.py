"""Issue #9, should-fix: ``make run`` installs what the service needs and nothing more (no
browser driver, fuzzer or type checker in the service's venv), and the venv's setuptools is
pinned to a release without the known vulnerabilities of the one Python bundles (65.5).

Checked on what make would run (``make -n``): installing for real takes minutes and the
network. Measured once by hand: docs/deployment.md.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: setuptools < 78.1.1: CVE-2025-47273 (path traversal); < 70: CVE-2024-6345; < 65.5.1:
#: CVE-2022-40897.
FIRST_SAFE_SETUPTOOLS = (78, 1, 1)


def _planned(target: str, tmp_path: Path) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    venv = tmp_path / "venv"  # a fresh venv: make plans every step
    return subprocess.run(
        ["make", "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True,
        check=True,
    ).stdout  # fmt: skip


def _installs(plan: str) -> list[str]:
    return [line for line in plan.splitlines() if "pip install" in line]


def test_make_run_installs_the_runtime_dependencies_only(tmp_path: Path) -> None:
    installs = _installs(_planned("run", tmp_path))
    assert any(line.rstrip().endswith("-c constraints.txt -e .") for line in installs), installs
    assert not any("[dev]" in line for line in installs), installs


def test_make_install_still_installs_the_test_tools(tmp_path: Path) -> None:
    installs = _installs(_planned("install", tmp_path))
    assert any("-e '.[dev]'" in line for line in installs), installs


def test_setuptools_is_pinned_to_a_release_without_known_vulnerabilities(tmp_path: Path) -> None:
    pins = re.findall(r"^setuptools==([\d.]+)$", (ROOT / "constraints.txt").read_text(), re.M)
    assert len(pins) == 1
    assert tuple(int(p) for p in pins[0].split(".")) >= FIRST_SAFE_SETUPTOOLS
    for target in ("run", "install"):
        installs = _installs(_planned(target, tmp_path))
        assert any("-c constraints.txt --upgrade setuptools" in line for line in installs)
