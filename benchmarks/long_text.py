"""Long texts: truncation against the ways of combining a text's windows (``--long-text chunk``).

Builds articles from THUCNews dev headlines (seeded): sentences are headlines, joined into
paragraphs, an article's own class mixed with a related class it drifts into (``RELATED``) and
with any other class, in four regimes:

- ``lead``: like news, the first paragraph (about one window) is three headlines of the
  article's class; the body holds 30-70% of them, the rest mostly the related class;
- ``spread``: no lead, the article's class holds 40-70% of the sentences, shuffled;
- ``ambiguous_lead``: a first paragraph of one headline each of the article's class, the
  related class and another class, then a body like ``spread``;
- ``distractor_lead``: a first paragraph of three headlines of another class (the related one
  half of the time), then a body holding 50-80% of the article's class.

Lengths are drawn log-uniformly between 300 and 4,000 characters. Prints, for each regime and
overall, the accuracy of truncation (the first ``max_len`` positions) and of each rule of
``newsclf.predictor.WINDOW_RULES`` (the library's :func:`combine_windows` on the library's
:meth:`Predictor.window_scores`), and seconds. Usage:

    python benchmarks/long_text.py --model DIR [--articles 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import time
from pathlib import Path

import numpy as np

from common import THUCNEWS, load_thucnews

from newsclf import Predictor
from newsclf.predictor import CHUNK_RULE, WINDOW_RULES, combine_windows

REGIMES = ("lead", "spread", "ambiguous_lead", "distractor_lead")
# the topics an article of a class wanders into (THUCNews class names)
RELATED = {"财经": ("股票", "房产"), "房产": ("财经",), "股票": ("财经",), "教育": ("社会",),
           "科技": ("游戏", "财经"), "社会": ("时政", "教育"), "时政": ("社会",),
           "体育": ("娱乐",), "游戏": ("科技", "娱乐"), "娱乐": ("游戏", "体育")}


class Headlines:
    """Dev headlines by class, drawn without replacement within one article (until it has used
    all of a class)."""

    def __init__(self, texts, labels, classes, rng: random.Random):
        self.by_class = {name: [] for name in classes}
        for text, label in zip(texts, labels):
            self.by_class[label].append(text.strip())
        self.classes = list(classes)
        self.rng = rng
        self.used = set()

    def new_article(self):
        self.used = set()

    def draw(self, label: str) -> str:
        pool = self.by_class[label]
        for _ in range(100 * len(pool)):
            headline = pool[self.rng.randrange(len(pool))]
            if headline not in self.used:
                self.used.add(headline)
                return headline
        return headline  # the article has used them all

    def other(self, *excluded: str) -> str:
        return self.rng.choice([name for name in self.classes if name not in excluded])


def body_sentences(headlines: Headlines, label: str, related: str, own_share: float,
                   related_share: float, length: int) -> list[str]:
    """Sentences until about ``length`` characters: the article's class with probability
    ``own_share``, else the related class with probability ``related_share``, else another."""
    rng, sentences, total = headlines.rng, [], 0
    while total < length:
        if rng.random() < own_share:
            sentence = headlines.draw(label)
        elif rng.random() < related_share:
            sentence = headlines.draw(related)
        else:
            sentence = headlines.draw(headlines.other(label, related))
        sentences.append(sentence)
        total += len(sentence) + 1
    return sentences


def as_article(lead: list[str], body: list[str], rng: random.Random) -> str:
    paragraphs = ["，".join(lead) + "。"] if lead else []
    i = 0
    while i < len(body):
        size = rng.randint(3, 6)
        paragraphs.append("，".join(body[i:i + size]) + "。")
        i += size
    return "\n".join(paragraphs)


def build_article(regime: str, label: str, headlines: Headlines) -> str:
    rng = headlines.rng
    headlines.new_article()
    related = rng.choice(RELATED.get(label) or (headlines.other(label),))
    length = int(np.exp(rng.uniform(np.log(300), np.log(4000))))
    if regime == "lead":
        lead = [headlines.draw(label) for _ in range(3)]
        body = body_sentences(headlines, label, related, rng.uniform(0.3, 0.7), 0.7,
                              length - sum(map(len, lead)))
    elif regime == "spread":
        lead, body = [], body_sentences(headlines, label, related, rng.uniform(0.4, 0.7), 0.5,
                                        length)
    elif regime == "ambiguous_lead":
        lead = [headlines.draw(label), headlines.draw(related),
                headlines.draw(headlines.other(label, related))]
        rng.shuffle(lead)
        body = body_sentences(headlines, label, related, rng.uniform(0.4, 0.7), 0.5,
                              length - sum(map(len, lead)))
    else:
        distractor = related if rng.random() < 0.5 else headlines.other(label, related)
        lead = [headlines.draw(distractor) for _ in range(3)]
        body = body_sentences(headlines, label, related, rng.uniform(0.5, 0.8), 0.5,
                              length - sum(map(len, lead)))
    return as_article(lead, body, rng)


def build(data, classes, per_regime: int, seed: int):
    rng = random.Random(seed)
    headlines = Headlines(data.texts, data.labels, classes, rng)
    articles, labels, regimes = [], [], []
    for regime in REGIMES:
        for i in range(per_regime):
            label = classes[i % len(classes)]
            articles.append(build_article(regime, label, headlines))
            labels.append(label)
            regimes.append(regime)
    return articles, np.array(labels, dtype=object), np.array(regimes, dtype=object)


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="a trained model directory")
    parser.add_argument("--data", default=str(THUCNEWS), help="THUCNews headlines directory")
    parser.add_argument("--articles", type=int, default=200, help="articles per regime")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=256)
    args = parser.parse_args()

    classes, _, dev = load_thucnews(Path(args.data))
    articles, labels, regimes = build(dev, classes, args.articles, args.seed)
    lengths = np.array([len(text) for text in articles])
    predictor = Predictor.from_dir(args.model)
    predictor.predict_proba(articles[:8], long_text="chunk")  # warm-up: kernels per shape

    truncated, truncate_seconds = timed(predictor.predict_proba, articles, args.batch_size)
    windows, window_seconds = timed(predictor.window_scores, articles, args.batch_size)
    chunked, chunk_seconds = timed(predictor.predict_proba, articles, args.batch_size,
                                   long_text="chunk")
    window_counts = np.array([len(scores) for scores in windows])
    rows = [("truncate", truncated.argmax(axis=1), truncate_seconds)]
    notes = {CHUNK_RULE: " (chunk)", "logit_mean": " (chunk before)"}
    for rule in WINDOW_RULES:
        combined, seconds = timed(lambda: np.array([combine_windows(scores, rule)
                                                    for scores in windows]))
        rows.append((rule, combined.argmax(axis=1), window_seconds + seconds))
    chosen = next(predicted for name, predicted, _ in rows if name == CHUNK_RULE)
    agreement = (chunked.argmax(axis=1) == chosen).mean()

    print(f"{len(articles)} articles ({args.articles} per regime, seed {args.seed}), "
          f"{lengths.min()}-{lengths.max()} characters (median {int(np.median(lengths))}), "
          f"{window_counts.min()}-{window_counts.max()} windows of {predictor.spec.max_len} "
          f"positions (median {int(np.median(window_counts))}); model {args.model}, backend "
          f"{predictor.backend}")
    header = f"| rule | {' | '.join(REGIMES)} | overall | seconds |"
    print(header)
    print("| --- |" + " ---: |" * (len(REGIMES) + 2))
    for name, predicted, seconds in rows:
        correct = predictor.classes_[predicted] == labels
        cells = [f"{correct[regimes == regime].mean():.3f}" for regime in REGIMES]
        label = f"`{name}`" + notes.get(name, "")
        print(f"| {label} | {' | '.join(cells)} | {correct.mean():.3f} | {seconds:.1f} |")
    print(f"`predict_proba(long_text=\"chunk\")`: {chunk_seconds:.1f} s, same label as "
          f"`{CHUNK_RULE}` for {agreement:.1%} of the articles")


if __name__ == "__main__":
    main()
