"""RasaNLU against a real Rasa 3.6 server trained on the knowledge base.

Slow (installs Rasa once, trains, starts the server): runs only when selected with
``pytest -m rasa`` (see scripts/test-rasa.sh) or when ``RASA_URL`` points at a running server
trained by scripts/rasa/train.sh.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from knowledge_base.entries import KBEntry, load_entries
from knowledge_base.nlu_types import NLUResult
from knowledge_base.rasa_nlu import RasaNLU, RasaUnavailableError
from otklik.cli import app

pytestmark = pytest.mark.rasa

RASA_SCRIPTS = Path(__file__).resolve().parent.parent / "scripts" / "rasa"


def _run(script: str, *args: str) -> str:
    done = subprocess.run(
        ["bash", str(RASA_SCRIPTS / script), *args],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"{script} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    return done.stdout


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGCONT)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


@pytest.fixture(scope="session")
def rasa_server(request: pytest.FixtureRequest) -> Iterator[tuple[str, int | None]]:
    """(url, pid): the server given by RASA_URL, or one set up, trained and started here."""
    given = os.environ.get("RASA_URL", "").strip()
    if given:
        yield given, None
        return
    if "rasa" not in (request.config.getoption("markexpr") or ""):
        pytest.skip(
            "needs a Rasa server: run scripts/test-rasa.sh (pytest -m rasa) or set RASA_URL"
        )
    _run("setup.sh")
    _run("train.sh")
    url, pid = _run("serve.sh", str(_free_port())).split()[-2:]
    try:
        yield url, int(pid)
    finally:
        _stop(int(pid))


@pytest.fixture(scope="session")
def entries() -> list[KBEntry]:
    return load_entries()


@pytest.fixture
def nlu(rasa_server: tuple[str, int | None], entries: list[KBEntry]) -> Iterator[RasaNLU]:
    with RasaNLU(rasa_server[0], timeout=10, entries=entries) as client:
        yield client


def test_server_has_the_model_trained_on_the_knowledge_base(nlu):
    assert nlu.status()["model_file"].endswith(".tar.gz")


def test_every_kb_question_is_understood_as_its_entry(nlu, entries):
    """Each entry's own question is understood as that entry for at least 99 % of the
    entries, and has its entry among the first three intents in every case. DIET on sparse
    features with 266 intents now and then puts a question just behind a close sibling's
    («Как получить место на кладбище?» behind the cemetery's upkeep); which one moves with
    any change of the data or the epochs (docs/nlu.md), so one such miss is allowed and
    more are not."""
    parsed = {entry.id: nlu.parse(entry.question) for entry in entries}
    wrong = {entry_id: result.intent for entry_id, result in parsed.items()
             if result.intent != entry_id}  # fmt: skip
    assert len(wrong) <= len(entries) * 0.01, wrong
    near = {entry_id: [intent for intent, _ in parsed[entry_id].ranking[:3]] for entry_id in wrong}
    assert all(entry_id in top for entry_id, top in near.items()), near


def test_kb_phrasings_are_understood_as_their_entries(nlu, entries):
    phrasings = [(text, entry.id) for entry in entries for text in entry.phrasings]
    assert phrasings, "the knowledge base has no phrasings"
    wrong = [(text, expected, nlu.parse(text).intent) for text, expected in phrasings]
    wrong = [item for item in wrong if item[1] != item[2]]
    assert len(wrong) <= len(phrasings) * 0.02, wrong


def test_parse_result_carries_topic_confidence_and_ranking(nlu, entries):
    entry = entries[0]
    result = nlu.parse(entry.question)
    assert result.backend == "rasa"
    assert result.topic == entry.topic
    assert result.life_situation == entry.life_situation
    assert 0.5 < result.confidence <= 1.0
    assert result.ranking[0] == (entry.id, pytest.approx(result.confidence))
    assert all(intent in {e.id for e in entries} for intent, _ in result.ranking)


def test_appeal_number_and_phone_are_extracted_with_offsets(nlu):
    text = "Где моё обращение 2024-000123? Мой телефон +7 912 345-67-89"
    found = {(e.kind, e.value, text[e.start : e.end]) for e in nlu.parse(text).entities}
    assert ("appeal_number", "2024-000123", "2024-000123") in found
    assert ("phone", "+7 912 345-67-89", "+7 912 345-67-89") in found


def test_message_with_only_a_number_asks_about_no_entry(nlu):
    result = nlu.parse("2025-104551")
    assert result.intent is None
    assert [(e.kind, e.value) for e in result.entities] == [("appeal_number", "2025-104551")]


def test_parse_command_prints_what_rasa_understood(rasa_server, entries):
    entry = entries[0]
    result = CliRunner().invoke(
        app, ["rasa", "parse", entry.question], env={"RASA_URL": rasa_server[0]}
    )
    assert result.exit_code == 0, result.output
    parsed = NLUResult.model_validate_json(result.output)
    assert (parsed.intent, parsed.backend) == (entry.id, "rasa")


def test_server_that_stops_answering_gives_a_clear_error(rasa_server, entries):
    url, pid = rasa_server
    if pid is None:
        pytest.skip("the server given by RASA_URL is not ours to pause")
    os.kill(pid, signal.SIGSTOP)
    try:
        with (
            RasaNLU(url, timeout=1, entries=entries) as paused,
            pytest.raises(RasaUnavailableError, match=r"did not answer within 1 s"),
        ):
            paused.parse("Протекает крыша")
    finally:
        os.kill(pid, signal.SIGCONT)
    with RasaNLU(url, timeout=10, entries=entries) as resumed:
        assert resumed.parse(entries[0].question).intent == entries[0].id


def test_server_that_is_down_gives_a_clear_error(entries):
    with (
        RasaNLU(f"http://127.0.0.1:{_free_port()}", entries=entries) as down,
        pytest.raises(RasaUnavailableError, match=r"not reachable.*serve\.sh"),
    ):
        down.parse("Протекает крыша")
