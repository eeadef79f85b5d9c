"""The understanding evaluation set (``eval/colloquial.yaml``, ``eval/offtopic.yaml``,
``eval/holdout.yaml``, ``eval/holdout2.yaml``).

Colloquial citizen messages with the entry that answers them, and messages the knowledge base
must not answer, each split into ``train`` (tunes the lexicon, fits the calibration) and
``test`` (held out: only measured). ``holdout`` is a second held-out split in a file of its
own, written after ``test`` had been looked at by several rounds of tuning: it is only ever
measured. ``holdout2`` is a third one, written fresh after ``holdout`` had been looked at too,
in the same format and likewise only measured. Shared by ``scripts/bench/kb_understanding.py``,
``scripts/kb_calibrate.py`` (which reads ``train`` only) and the tests.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from knowledge_base.datafile import load_model

EVAL_DIR = Path(__file__).resolve().parent / "eval"
COLLOQUIAL_FILE = EVAL_DIR / "colloquial.yaml"
OFFTOPIC_FILE = EVAL_DIR / "offtopic.yaml"
HOLDOUT_FILE = EVAL_DIR / "holdout.yaml"
HOLDOUT2_FILE = EVAL_DIR / "holdout2.yaml"

Split = Literal["train", "test", "holdout", "holdout2"]
SPLITS: tuple[Split, ...] = ("train", "test", "holdout", "holdout2")
#: The splits kept in a file of their own (both kinds of message in one file).
HOLDOUT_FILES: dict[str, Path] = {"holdout": HOLDOUT_FILE, "holdout2": HOLDOUT2_FILE}


class Labelled(BaseModel):
    text: str
    #: The entry id that answers the message.
    expected: str


class Colloquial(BaseModel):
    train: list[Labelled] = Field(default_factory=list)
    test: list[Labelled] = Field(default_factory=list)


class OffTopic(BaseModel):
    train: list[str] = Field(default_factory=list)
    test: list[str] = Field(default_factory=list)


def load_colloquial(path: Path = COLLOQUIAL_FILE) -> Colloquial:
    return load_model(path, Colloquial)


def load_offtopic(path: Path = OFFTOPIC_FILE) -> OffTopic:
    return load_model(path, OffTopic)


class HoldOut(BaseModel):
    """A held-out split kept in a file of its own: both kinds of message in one file."""

    colloquial: list[Labelled] = Field(default_factory=list)
    offtopic: list[str] = Field(default_factory=list)


def load_holdout(path: Path = HOLDOUT_FILE) -> HoldOut:
    return load_model(path, HoldOut)


def split_messages(split: Split) -> tuple[list[Labelled], list[str]]:
    """The colloquial (labelled) and the off-topic messages of ``split``."""
    if split in HOLDOUT_FILES:
        holdout = load_holdout(HOLDOUT_FILES[split])
        return holdout.colloquial, holdout.offtopic
    return getattr(load_colloquial(), split), getattr(load_offtopic(), split)


class Outcome(BaseModel):
    """What the knowledge base did with one split of the evaluation set."""

    on_topic: int
    right: int
    wrong: int
    handed_off: int
    #: The right entry ranked first, whether answered or handed off.
    right_first: int
    off_topic: int
    off_topic_answered: int
    wrong_cases: list[dict[str, str]] = Field(default_factory=list)
    handed_off_cases: list[dict[str, str]] = Field(default_factory=list)
    off_topic_cases: list[dict[str, str]] = Field(default_factory=list)

    def rate(self, count: int, total: int) -> float:
        return round(count / total, 4) if total else 0.0

    @property
    def right_rate(self) -> float:
        return self.rate(self.right, self.on_topic)

    @property
    def wrong_rate(self) -> float:
        return self.rate(self.wrong, self.on_topic)

    @property
    def off_topic_answered_rate(self) -> float:
        return self.rate(self.off_topic_answered, self.off_topic)


def measure(kb: object, split: Split = "test") -> Outcome:
    """Ask ``kb`` (a ``KnowledgeBase``) every message of ``split`` and count the outcomes."""
    colloquial, offtopic = split_messages(split)
    right = wrong = handed_off = right_first = answered_off = 0
    wrong_cases: list[dict[str, str]] = []
    handed_cases: list[dict[str, str]] = []
    off_cases: list[dict[str, str]] = []
    for item in colloquial:
        answer = kb.answer(item.text)  # type: ignore[attr-defined]
        first = answer.hits[0].entry_id if answer.hits else ""
        right_first += first == item.expected
        if answer.handoff or answer.hit is None:
            handed_off += 1
            handed_cases.append({"text": item.text, "expected": item.expected, "first": first})
        elif answer.hit.entry_id == item.expected:
            right += 1
        else:
            wrong += 1
            wrong_cases.append(
                {"text": item.text, "expected": item.expected, "got": answer.hit.entry_id}
            )
    for text in offtopic:
        answer = kb.answer(text)  # type: ignore[attr-defined]
        if not answer.handoff and answer.hit is not None:
            answered_off += 1
            off_cases.append({"text": text, "got": answer.hit.entry_id})
    return Outcome(
        on_topic=len(colloquial),
        right=right,
        wrong=wrong,
        handed_off=handed_off,
        right_first=right_first,
        off_topic=len(offtopic),
        off_topic_answered=answered_off,
        wrong_cases=wrong_cases,
        handed_off_cases=handed_cases,
        off_topic_cases=off_cases,
    )
