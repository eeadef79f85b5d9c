"""Held-out phrasings (``heldout.yaml``): messages the index never saw, with the expected entry.

Shared by the tests, ``scripts/bench/nlu_bench.py`` and the Rasa side-by-side benchmark.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel, Field

from knowledge_base.datafile import load_model
from knowledge_base.nlu_types import NLUBackend

HELDOUT_FILE = Path(__file__).resolve().parent / "heldout.yaml"


class HeldOutPhrasing(BaseModel):
    text: str
    #: The entry id that answers it.
    expected: str


class HeldOut(BaseModel):
    phrasings: list[HeldOutPhrasing]
    #: Messages no entry answers: the bot must hand them off.
    off_topic: list[str] = Field(default_factory=list)


def load_heldout(path: Path = HELDOUT_FILE) -> HeldOut:
    return load_model(path, HeldOut)


class Evaluation(BaseModel):
    """How a backend does on the held-out phrasings (accuracy, hand-off, latency)."""

    backend: str
    phrasings: int
    top1_accuracy: float
    top3_accuracy: float
    #: Share of on-topic phrasings the backend answered (confidence above its threshold).
    answered_rate: float
    #: Of the answered ones, the share answered with the right entry.
    answered_precision: float
    #: Share of off-topic messages handed off (no intent).
    off_topic_handoff_rate: float
    latency_ms_p50: float
    latency_ms_p99: float
    misses: list[dict[str, str | None]] = Field(default_factory=list)


def evaluate(backend: NLUBackend, heldout: HeldOut, *, rounds: int = 1) -> Evaluation:
    """Parse every held-out message ``rounds`` times; accuracy from the first round."""
    latencies: list[float] = []
    top1 = top3 = answered = answered_right = 0
    misses: list[dict[str, str | None]] = []
    for round_number in range(rounds):
        for item in heldout.phrasings:
            started = time.perf_counter()
            result = backend.parse(item.text)
            latencies.append((time.perf_counter() - started) * 1000)
            if round_number:
                continue
            best = result.ranking[0][0] if result.ranking else None
            top1 += best == item.expected
            top3 += item.expected in [intent for intent, _ in result.ranking[:3]]
            if result.intent is not None:
                answered += 1
                answered_right += result.intent == item.expected
            if best != item.expected:
                misses.append({"text": item.text, "expected": item.expected, "got": best})
    handed_off = sum(backend.parse(text).intent is None for text in heldout.off_topic)
    n = len(heldout.phrasings)
    latencies.sort()
    return Evaluation(
        backend=backend.name,
        phrasings=n,
        top1_accuracy=round(top1 / n, 4),
        top3_accuracy=round(top3 / n, 4),
        answered_rate=round(answered / n, 4),
        answered_precision=round(answered_right / answered, 4) if answered else 0.0,
        off_topic_handoff_rate=round(handed_off / len(heldout.off_topic), 4)
        if heldout.off_topic
        else 1.0,
        latency_ms_p50=round(_percentile(latencies, 50), 3),
        latency_ms_p99=round(_percentile(latencies, 99), 3),
        misses=misses,
    )


def _percentile(sorted_values: list[float], percent: float) -> float:
    if not sorted_values:
        return 0.0
    index = min(len(sorted_values) - 1, round(percent / 100 * (len(sorted_values) - 1)))
    return sorted_values[index]
