"""Fit the calibrated confidence of the knowledge base (``knowledge_base/calibration.yaml``).

    .venv/bin/python scripts/kb_calibrate.py [--dry-run]

A logistic regression of «the first hit is the right entry» over the features of the match
(``knowledge_base.search.FEATURES``), fitted in plain Python (a few hundred samples, no
numpy) on the *training* parts of ``knowledge_base/eval/`` plus ``heldout.yaml``: a colloquial
message is positive when the right entry came first, an off-topic one is always negative.
The held-out parts of ``eval/`` are never read here. Prints, for a few thresholds, what the
bot would do on the training messages, so the hand-off threshold in ``search.yaml`` can be
chosen as a probability. Rerun after changing the entries, the lexicon or the weights.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from knowledge_base.entries import KBEntry, load_entries  # noqa: E402
from knowledge_base.evalset import load_colloquial, load_offtopic  # noqa: E402
from knowledge_base.heldout import load_heldout  # noqa: E402
from knowledge_base.search import (  # noqa: E402
    CALIBRATION_FILE,
    FEATURES,
    Calibration,
    KnowledgeBase,
    load_search_config,
    load_synonym_groups,
)

#: L2 penalty: keeps the weights modest with a few hundred samples.
L2 = 0.01


def fit(rows: list[list[float]], labels: list[int], steps: int = 3000) -> list[float]:
    """Weights (intercept first) by full-batch gradient descent with an L2 penalty, on
    standardised features (fast, even convergence), returned for the raw features."""
    n = len(rows)
    columns = list(zip(*rows, strict=True))
    means = [sum(c) / n for c in columns]
    scales = [
        math.sqrt(sum((x - m) ** 2 for x in c) / n) or 1.0
        for c, m in zip(columns, means, strict=True)
    ]
    scaled = [[(x - m) / s for x, m, s in zip(row, means, scales, strict=True)] for row in rows]
    width = len(rows[0]) + 1
    weights = [0.0] * width
    rate = 1.0
    # Balanced classes: the few negatives (wrong first hit, off-topic) count as much in all
    # as the many positives, so that a wrong answer is not cheap for the model.
    positives = sum(labels)
    class_weight = {1: n / (2 * max(1, positives)), 0: n / (2 * max(1, n - positives))}
    for _ in range(steps):
        grad = [0.0] * width
        for row, label in zip(scaled, labels, strict=True):
            z = weights[0] + sum(w * x for w, x in zip(weights[1:], row, strict=True))
            error = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z)))) - label
            error *= class_weight[label]
            grad[0] += error
            for i, x in enumerate(row, start=1):
                grad[i] += error * x
        for i in range(width):
            penalty = L2 * weights[i] if i else 0.0
            weights[i] -= rate * (grad[i] / n + penalty)
    raw = [w / s for w, s in zip(weights[1:], scales, strict=True)]
    intercept = weights[0] - sum(w * m for w, m in zip(raw, means, strict=True))
    return [intercept, *raw]


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="print, do not write")
    parser.add_argument(
        "--folds", type=int, default=5, help="also ask the entries' own phrasings, N-fold (0 = no)"
    )
    args = parser.parse_args()

    entries = load_entries()
    config = load_search_config()
    groups = load_synonym_groups()

    def index(of: list[KBEntry]) -> KnowledgeBase:
        return KnowledgeBase(of, config=config, synonym_groups=groups, calibration=Calibration())

    kb = index(entries)
    # (index, message, expected entry or None for off-topic, whether it is of eval/ train)
    samples: list[tuple[KnowledgeBase, str, str | None, bool]] = [
        (kb, item.text, item.expected, True) for item in load_colloquial().train
    ]
    samples += [(kb, text, None, True) for text in load_offtopic().train]
    samples += [(kb, item.text, item.expected, False) for item in load_heldout().phrasings]
    samples += [(kb, text, None, False) for text in load_heldout().off_topic]
    for fold in range(args.folds):
        # The entries' own phrasings, each asked of an index built without it.
        reduced = [
            entry.model_copy(
                update={
                    "phrasings": [
                        p for j, p in enumerate(entry.phrasings) if j % args.folds != fold
                    ]
                }
            )
            for entry in entries
        ]
        fold_kb = index(reduced)
        samples += [
            (fold_kb, phrasing, entry.id, False)
            for entry in entries
            for j, phrasing in enumerate(entry.phrasings)
            if j % args.folds == fold
        ]
    rows: list[list[float]] = []
    labels: list[int] = []
    kept: list[tuple[str | None, str | None, bool, bool]] = []
    for on, text, expected, colloquial in samples:
        ranking = on.rank(text)
        if not ranking.hits:
            continue
        first = ranking.hits[0].entry_id
        rows.append([ranking.features[name] for name in FEATURES])
        labels.append(int(first == expected))
        kept.append((expected, first, ranking.off_topic is not None, colloquial))
    weights = fit(rows, labels)
    calibration = Calibration(
        intercept=round(weights[0], 4),
        weights={name: round(w, 4) for name, w in zip(FEATURES, weights[1:], strict=True)},
    )
    print(f"samples {len(rows)}, positive {sum(labels)}")
    print(f"intercept {calibration.intercept}, weights {calibration.weights}")
    scored = [
        (calibration.confidence(dict(zip(FEATURES, row, strict=True))), *case)
        for row, case in zip(rows, kept, strict=True)
    ]
    for title, subset in (
        ("eval/ training part", [case for case in scored if case[4]]),
        ("all training messages", scored),
    ):
        print(f"threshold  right  wrong  handed-off  off-topic-answered ({title})")
        on_topic = sum(case[1] is not None for case in subset)
        off = len(subset) - on_topic
        for threshold in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            right = wrong = answered_off = 0
            for p, expected, first, beaten, _ in subset:
                if beaten or p < threshold:
                    continue
                if expected is None:
                    answered_off += 1
                elif first == expected:
                    right += 1
                else:
                    wrong += 1
            handed = on_topic - right - wrong
            print(
                f"{threshold:9.2f}  {right / on_topic:5.1%}  {wrong / on_topic:5.1%}  "
                f"{handed / on_topic:10.1%}  {answered_off / max(1, off):5.1%}"
            )
    if not args.dry_run:
        lines = [
            "# Calibrated confidence of the knowledge base: a logistic model over the features",
            "# of the best match. Written by scripts/kb_calibrate.py (do not edit by hand):",
            f"# fitted on {len(rows)} training messages ({sum(labels)} answered right first).",
            f"intercept: {calibration.intercept}",
            "weights:",
            *(f"  {name}: {weight}" for name, weight in calibration.weights.items()),
        ]
        CALIBRATION_FILE.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"written {CALIBRATION_FILE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
