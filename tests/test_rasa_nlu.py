"""RasaNLU: mapping Rasa's /model/parse answers, errors a caller can act on, backend choice."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import httpx
import pytest
from typer.testing import CliRunner

from knowledge_base.entries import KBEntry
from knowledge_base.nlu_backend import get_nlu_backend
from knowledge_base.rasa_nlu import RasaNLU, RasaUnavailableError
from otklik.cli import app

ENTRY = KBEntry(
    id="appeal_status",
    topic="Обращения",
    life_situation="Обращение в ведомство",
    question="Как узнать статус обращения?",
    short_answer="Напишите номер обращения в личные сообщения.",
    full_answer="Назовите номер обращения.",
    department="Отдел работы с обращениями",
)

#: An answer of Rasa 3.6 to POST /model/parse, as the server sends it.
PARSE_ANSWER = {
    "text": "где моё обращение 2024-000123",
    "intent": {"name": "appeal_status", "confidence": 0.91},
    "entities": [
        {
            "entity": "appeal_number",
            "start": 18,
            "end": 29,
            "value": "2024-000123",
            "extractor": "RegexEntityExtractor",
        }
    ],
    "text_tokens": [[0, 3], [4, 7], [8, 17], [18, 29]],
    "intent_ranking": [
        {"name": "appeal_status", "confidence": 0.91},
        {"name": "nlu_fallback", "confidence": 0.05},
        {"name": "fee_payment", "confidence": 0.04},
    ],
}


def rasa_answering(answer: object, status: int = 200) -> tuple[RasaNLU, list[httpx.Request]]:
    requests: list[httpx.Request] = []

    def handle(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return httpx.Response(status, json=answer)

    nlu = RasaNLU("http://rasa.test/", entries=[ENTRY], transport=httpx.MockTransport(handle))
    return nlu, requests


def test_parse_posts_the_text_to_model_parse():
    nlu, requests = rasa_answering(PARSE_ANSWER)
    nlu.parse("где моё обращение 2024-000123")
    assert len(requests) == 1
    assert requests[0].method == "POST"
    assert requests[0].url == "http://rasa.test/model/parse"
    assert json.loads(requests[0].content) == {"text": "где моё обращение 2024-000123"}


def test_rasa_intent_becomes_the_kb_entry_with_its_topic():
    nlu, _ = rasa_answering(PARSE_ANSWER)
    result = nlu.parse("где моё обращение 2024-000123")
    assert result.intent == "appeal_status"
    assert result.confidence == pytest.approx(0.91)
    assert result.topic == "Обращения"
    assert result.life_situation == "Обращение в ведомство"
    assert result.backend == "rasa"


def test_ranking_keeps_kb_entries_only_best_first():
    nlu, _ = rasa_answering(PARSE_ANSWER)
    assert nlu.parse("x").ranking == [("appeal_status", 0.91), ("fee_payment", 0.04)]


def test_rasa_entities_become_entities_with_offsets():
    nlu, _ = rasa_answering(PARSE_ANSWER)
    [entity] = nlu.parse("где моё обращение 2024-000123").entities
    assert (entity.kind, entity.value, entity.start, entity.end) == (
        "appeal_number",
        "2024-000123",
        18,
        29,
    )


def test_rasa_fallback_means_no_intent_with_the_best_candidate_confidence():
    answer = {
        "intent": {"name": "nlu_fallback", "confidence": 0.3},
        "entities": [],
        "intent_ranking": [
            {"name": "nlu_fallback", "confidence": 0.3},
            {"name": "appeal_status", "confidence": 0.22},
            {"name": "fee_payment", "confidence": 0.2},
        ],
    }
    nlu, _ = rasa_answering(answer)
    result = nlu.parse("погода завтра")
    assert result.intent is None
    assert result.confidence == pytest.approx(0.22)
    assert result.topic is None
    assert result.ranking[0] == ("appeal_status", 0.22)


def test_message_not_understood_has_no_intent_but_keeps_its_entities():
    answer = {
        "intent": {"name": "nlu_fallback", "confidence": 0.3},
        "entities": [{"entity": "phone", "start": 0, "end": 11, "value": "89123456789"}],
        "intent_ranking": [{"name": "nlu_fallback", "confidence": 0.3}],
    }
    nlu, _ = rasa_answering(answer)
    result = nlu.parse("89123456789")
    assert result.intent is None
    assert result.confidence == 0.0
    assert [e.kind for e in result.entities] == ["phone"]


def test_intent_unknown_to_the_local_kb_is_kept_without_topic():
    answer = {"intent": {"name": "new_entry", "confidence": 0.8}, "entities": []}
    nlu, _ = rasa_answering(answer)
    result = nlu.parse("x")
    assert (result.intent, result.topic) == ("new_entry", None)


def test_server_without_a_model_gives_an_error_with_the_http_status():
    nlu, _ = rasa_answering({"message": "No agent loaded."}, status=409)
    with pytest.raises(RasaUnavailableError, match=r"HTTP 409.*No agent loaded"):
        nlu.parse("x")


@pytest.fixture
def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        yield int(sock.getsockname()[1])


def test_server_that_is_down_gives_a_clear_error(closed_port):
    with (
        RasaNLU(f"http://127.0.0.1:{closed_port}", entries=[ENTRY]) as nlu,
        pytest.raises(RasaUnavailableError, match=r"not reachable.*serve\.sh.*RASA_URL"),
    ):
        nlu.parse("статус обращения")


def test_server_that_does_not_answer_in_time_gives_a_clear_error(silent_server):
    with (
        RasaNLU(f"http://127.0.0.1:{silent_server}", timeout=0.2, entries=[ENTRY]) as nlu,
        pytest.raises(RasaUnavailableError, match=r"did not answer within 0\.2 s"),
    ):
        nlu.parse("статус обращения")


def test_rasa_url_selects_the_rasa_backend():
    backend = get_nlu_backend({"RASA_URL": "http://127.0.0.1:5005/"})
    assert isinstance(backend, RasaNLU)
    assert backend.name == "rasa"
    assert backend.url == "http://127.0.0.1:5005"


def test_without_rasa_url_the_embedded_backend_is_used():
    embedded = pytest.importorskip("knowledge_base.nlu")
    backend = get_nlu_backend({"RASA_URL": "  "})
    assert isinstance(backend, embedded.EmbeddedNLU)


def test_parse_command_explains_that_the_server_is_down(closed_port):
    result = CliRunner().invoke(
        app,
        ["rasa", "parse", "Протекает крыша"],
        env={"RASA_URL": f"http://127.0.0.1:{closed_port}"},
    )
    assert result.exit_code == 1
    assert "not reachable" in result.output
