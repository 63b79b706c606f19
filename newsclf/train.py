"""Training: from labelled texts to a model directory.

Builds the vocabulary from the training texts, trains the encoder with AdamW (linear warm-up
then linear decay, gradient clipping, optional label smoothing and token dropout), evaluates on
the dev set after each epoch, stops early on dev macro-F1, and keeps the best epoch's weights in
the model directory. Seeded: the same seed and data give the same metrics on CPU.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.config import TrainConfig
from newsclf.data import LabelledData, encode_texts, pad_batch
from newsclf.errors import DataError, NewsclfError
from newsclf.modeldir import EVAL_DEV, METRICS, TRAIN_LOG, save_model_dir, write_json
from newsclf.tokenize import Tokenizer
from newsclf.vocab import PAD_ID, UNK_ID, Vocab


@dataclass
class TrainResult:
    output_dir: Path
    metrics: dict


def seed_everything(seed: int) -> None:
    from newsclf.model import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def resolve_classes(train: LabelledData, dev: LabelledData | None,
                    class_names: Sequence[str] | None) -> list[str]:
    """The model's classes: the class-names file's order, else sorted training labels."""
    seen = sorted(set(train.labels))
    classes = list(class_names) if class_names is not None else seen
    if len(seen) < 2:
        raise DataError(f"{train.source}: only one class ({seen[0]!r}) in the training data; "
                        "a classifier needs at least two")
    unknown = sorted(set(train.labels) - set(classes))
    if unknown:
        raise DataError(f"{train.source}: labels not in the class list: {', '.join(unknown)}")
    if dev is not None:
        unseen = sorted(set(dev.labels) - set(seen))
        if unseen:
            raise DataError(f"{dev.source}: class(es) {', '.join(unseen)} never occur in the "
                            f"training data {train.source}; the model could not learn them")
    return classes


def _batches(lengths: np.ndarray, batch_size: int, rng: np.random.RandomState) -> list[np.ndarray]:
    """Shuffled batches of similar-length texts: shuffle, sort within pools of 50 batches by
    length, cut into batches, shuffle the batch order."""
    order = rng.permutation(len(lengths))
    pool = batch_size * 50
    batches = []
    for start in range(0, len(order), pool):
        chunk = order[start:start + pool]
        chunk = chunk[np.argsort(lengths[chunk], kind="stable")]
        batches.extend(chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size))
    rng.shuffle(batches)
    return batches


def _learning_rate(config: TrainConfig, total_steps: int):
    from newsclf.model import paddle

    warmup = max(1, int(round(config.warmup * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return paddle.optimizer.lr.LambdaDecay(config.lr, factor)


def train(config: TrainConfig, train_data: LabelledData, dev_data: LabelledData | None,
          output_dir: str | Path, class_names: Sequence[str] | None = None,
          progress: bool = True, log=print) -> TrainResult:
    """Train a model and write its directory to ``output_dir``; returns the best dev metrics.

    Without ``dev_data`` every epoch runs and the last one is kept."""
    from tqdm.auto import tqdm

    from newsclf.evaluate import EvaluationResult
    from newsclf.model import F, build_model, paddle, predict_logits, softmax, weights_of

    config.validate()
    started = time.perf_counter()
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NewsclfError(f"{output_dir}: exists and is not a directory; choose another --output")
    classes = resolve_classes(train_data, dev_data, class_names)
    class_index = {name: i for i, name in enumerate(classes)}
    seed_everything(config.seed)

    tokenizer = Tokenizer(config.tokenizer, config.user_dict)
    train_features = [tokenizer.features(text) for text in train_data.texts]
    vocab = Vocab.build(train_features, config.min_freq, config.max_vocab)
    train_ids = [vocab.encode(f, config.max_len, tokenizer.n_features) for f in train_features]
    del train_features
    y_train = np.array([class_index[label] for label in train_data.labels], dtype=np.int64)
    if dev_data is not None:
        dev_ids = encode_texts(tokenizer, vocab, dev_data.texts, config.max_len)
    log(f"{len(train_ids)} training texts, {len(dev_data) if dev_data else 0} dev texts, "
        f"{len(classes)} classes, vocabulary {len(vocab)}")

    model = build_model(config, len(vocab), len(classes))
    lengths = np.array([len(ids) for ids in train_ids])
    steps_per_epoch = -(-len(train_ids) // config.batch_size)
    schedule = _learning_rate(config, steps_per_epoch * config.epochs)
    decay = {p.name for p in model.parameters() if len(p.shape) >= 2}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=schedule, parameters=model.parameters(), weight_decay=config.weight_decay,
        apply_decay_param_fun=lambda name: name in decay,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(config.clip_norm) if config.clip_norm else None)
    rng = np.random.RandomState(config.seed)

    output_dir.mkdir(parents=True, exist_ok=True)
    (output_dir / TRAIN_LOG).unlink(missing_ok=True)
    save_args = dict(config=config, vocab=vocab, labels=classes, n_features=tokenizer.n_features)
    best, best_epoch, waited, history = None, 0, 0, []
    for epoch in range(1, config.epochs + 1):
        model.train()
        epoch_start, total_loss, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(total=len(train_ids), desc=f"epoch {epoch}/{config.epochs}", unit="text",
                   disable=None if progress else True, leave=False, dynamic_ncols=True)
        for index in _batches(lengths, config.batch_size, rng):
            ids = pad_batch([train_ids[i] for i in index])
            if config.token_dropout:
                drop = (rng.random_sample(ids.shape) < config.token_dropout) & (ids != PAD_ID)
                ids[drop] = UNK_ID
            logits = model(paddle.to_tensor(ids))
            loss = F.cross_entropy(logits, paddle.to_tensor(y_train[index]),
                                   label_smoothing=config.label_smoothing)
            loss.backward()
            optimizer.step()
            optimizer.clear_grad()
            schedule.step()
            total_loss += float(loss) * len(index)
            seen += len(index)
            bar.update(len(index))
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
        bar.close()
        record = {"epoch": epoch, "train_loss": round(total_loss / seen, 6),
                  "lr": float(schedule.get_lr())}
        if dev_data is not None:
            dev_result = EvaluationResult.from_predictions(
                classes, dev_data.texts, dev_data.labels, softmax(predict_logits(model, dev_ids)))
            record.update(dev_accuracy=dev_result.accuracy, dev_macro_f1=dev_result.macro_f1)
        record["epoch_seconds"] = round(time.perf_counter() - epoch_start, 2)
        record["texts_per_second"] = round(seen / record["epoch_seconds"], 1)
        history.append(record)
        with open(output_dir / TRAIN_LOG, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        summary = f"epoch {epoch}: loss {record['train_loss']:.4f}"
        if dev_data is not None:
            summary += f", dev accuracy {record['dev_accuracy']:.4f}, macro-F1 {record['dev_macro_f1']:.4f}"
        log(summary + f" ({record['epoch_seconds']:.0f}s)")

        improved = dev_data is None or best is None or record["dev_macro_f1"] > best["dev_macro_f1"]
        if improved:
            best, best_epoch, waited = record, epoch, 0
            best_dev_result = dev_result if dev_data is not None else None
            save_model_dir(output_dir, weights=weights_of(model), **save_args)
        else:
            waited += 1
            if waited >= config.patience:
                log(f"no dev macro-F1 gain for {waited} epochs: stopping early")
                break

    metrics = {"best_epoch": best_epoch, "epochs_run": len(history),
               "n_train": len(train_ids), "n_dev": len(dev_data) if dev_data else 0}
    if dev_data is not None:
        metrics.update(dev_accuracy=best["dev_accuracy"], dev_macro_f1=best["dev_macro_f1"])
    write_json(output_dir / METRICS, metrics)
    if best_dev_result is not None:
        best_dev_result.save(output_dir / EVAL_DEV)
    log(f"best epoch {best_epoch}; model saved to {output_dir} "
        f"({time.perf_counter() - started:.0f}s)")
    return TrainResult(output_dir, metrics)
