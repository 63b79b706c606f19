"""What training says about its data before it starts, when the numbers it will print would
mislead: dev texts that are also training texts, classes dev lacks, classes with very few
training texts. Warnings, not refusals: each can be what the user meant."""

from __future__ import annotations

from collections import Counter

from newsclf.datafiles import LabelledData
from newsclf.tokenize import normalize

# dev texts found in the training data, as a share of dev, from which training warns
OVERLAP_WARNING_SHARE = 0.01
# a class with fewer training texts than this is named in a warning
FEW_EXAMPLES = 5


def data_warnings(train: LabelledData, dev: LabelledData | None,
                  classes: list[str]) -> list[str]:
    """One line per problem found (none: an empty list)."""
    warnings = []
    counts = Counter(train.labels)
    few = [f"{name!r} ({counts[name]})" for name in classes if counts[name] < FEW_EXAMPLES]
    if few:
        warnings.append(f"{train.source}: class(es) with fewer than {FEW_EXAMPLES} training "
                        f"texts: {', '.join(few[:10])}{', ...' if len(few) > 10 else ''}; the "
                        "model will hardly learn them: add labelled texts of them")
    if dev is None:
        return warnings
    known = {hash(normalize(text)) for text in train.texts}  # hashes: flat in the texts' size
    shared = sum(hash(normalize(text)) in known for text in dev.texts)
    if shared and shared >= OVERLAP_WARNING_SHARE * len(dev):
        warnings.append(f"{dev.source}: {shared} of its {len(dev)} texts ({shared / len(dev):.0%}) "
                        f"are also in the training data {train.source}: dev scores on them "
                        "measure memory, and early stopping and the choice of the best epoch "
                        "rely on them; give dev texts the model does not train on")
    in_dev = set(dev.labels)
    absent = [name for name in classes if name not in in_dev]
    if absent:
        warnings.append(f"{dev.source}: no dev text of class(es) "
                        f"{', '.join(map(repr, absent[:10]))}{', ...' if len(absent) > 10 else ''}"
                        f"; the dev macro-F1 counts each as F1 0 (it averages all "
                        f"{len(classes)} classes), so it understates the model: add dev texts "
                        "of them")
    return warnings
