"""Training: from labelled texts to a model directory.

Builds the vocabulary from the training texts, trains the encoder with AdamW (linear warm-up
then linear decay, gradient clipping, optional label smoothing and token dropout), evaluates on
the dev set after each epoch, stops early on dev macro-F1, and keeps the best epoch's weights in
the model directory. Seeded: the same seed and data give the same metrics on CPU.
"""

from __future__ import annotations

import json
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from newsclf.config import TrainConfig
from newsclf.data import LabelledData, encode_texts, pad_batch
from newsclf.errors import DataError, NewsclfError
from newsclf.modeldir import (EVAL_DEV, METRICS, TRAIN_LOG, save_model_dir, write_atomic,
                              write_json)
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


CHECKPOINT_DIR, CHECKPOINT_STATE, CHECKPOINT_TENSORS = "checkpoint", "state.json", "state.safetensors"
LOCK_FILE = ".newsclf-train.lock"


def _epoch_seed(seed: int, epoch: int) -> int:
    # Each epoch draws its randomness from its own seed, so a run resumed at an epoch boundary
    # continues exactly as an uninterrupted one would.
    return (seed * 1_000_003 + epoch) % (2**31 - 1)


class _OutputLock:
    """An exclusive lock on the output directory for the duration of a training run."""

    def __init__(self, directory: Path):
        self.path = directory / LOCK_FILE
        self.handle = None

    def __enter__(self):
        import fcntl
        import os

        self.handle = open(self.path, "a+")
        try:
            fcntl.flock(self.handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.handle.seek(0)
            owner = self.handle.read().strip() or "another process"
            self.handle.close()
            raise NewsclfError(f"{self.path.parent}: another 'newsclf train' ({owner}) is writing "
                               "this directory; wait for it or choose another --output") from None
        self.handle.seek(0)
        self.handle.truncate()
        self.handle.write(f"pid {os.getpid()}")
        self.handle.flush()
        return self

    def __exit__(self, *exc):
        self.handle.close()
        self.path.unlink(missing_ok=True)


class _Parallel:
    """The data-parallel environment when launched by ``paddle.distributed.launch`` (world
    size > 1), else a single process. Only rank 0 writes files."""

    def __init__(self):
        import os

        self.world = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
        self.rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
        if self.world > 1:
            import paddle.distributed as dist

            dist.init_parallel_env()
            self.rank, self.world = dist.get_rank(), dist.get_world_size()

    @property
    def writer(self) -> bool:
        return self.rank == 0

    def broadcast(self, value):
        """Rank 0's ``value`` on every rank (any picklable object)."""
        if self.world == 1:
            return value
        import paddle.distributed as dist

        holder = [value]
        dist.broadcast_object_list(holder, src=0)
        return holder[0]

    def gather_rows(self, local: np.ndarray, total: int) -> np.ndarray:
        """Concatenate every rank's rows of a strided shard (row i on rank i % world) back
        into input order."""
        if self.world == 1:
            return local
        import paddle
        import paddle.distributed as dist

        per_rank = -(-total // self.world)
        padded = np.zeros((per_rank,) + local.shape[1:], dtype=local.dtype)
        padded[:len(local)] = local
        parts = []
        dist.all_gather(parts, paddle.to_tensor(padded))
        result = np.empty((total,) + local.shape[1:], dtype=local.dtype)
        for rank, part in enumerate(parts):
            rows = len(range(rank, total, self.world))
            result[rank::self.world] = part.numpy()[:rows]
        return result


def _optimizer_state(optimizer, model) -> tuple[dict, dict]:
    """Optimizer tensors keyed by structured parameter names (stable across processes), and
    the scheduler state."""
    names = {param.name: name for name, param in model.named_parameters()}
    tensors, scheduler = {}, None
    for key, value in optimizer.state_dict().items():
        if key == "LR_Scheduler":
            scheduler = dict(value)
            continue
        param = next((p for p in names if key.startswith(p + "_")), None)
        if param is None:
            raise RuntimeError(f"optimizer state {key!r} belongs to no parameter")
        tensors["optimizer/" + names[param] + key[len(param):]] = value.numpy()
    return tensors, scheduler


def _restore_optimizer(optimizer, model, tensors: dict, scheduler: dict) -> None:
    from newsclf.model import paddle

    by_name = {name: param.name for name, param in model.named_parameters()}
    state = {"LR_Scheduler": scheduler}
    for key, value in tensors.items():
        if not key.startswith("optimizer/"):
            continue
        key = key[len("optimizer/"):]
        name = next(n for n in sorted(by_name, key=len, reverse=True) if key.startswith(n + "_"))
        state[by_name[name] + key[len(name):]] = paddle.to_tensor(value)
    optimizer.set_state_dict(state)


def _save_checkpoint(output_dir: Path, model, optimizer, progress_state: dict,
                     extra_tensors: dict) -> None:
    """Everything needed to continue after the last finished epoch; ``state.json`` last."""
    import hashlib

    from safetensors.numpy import save as save_safetensors

    from newsclf.model import weights_of

    directory = output_dir / CHECKPOINT_DIR
    directory.mkdir(exist_ok=True)
    tensors, scheduler = _optimizer_state(optimizer, model)
    tensors.update({"model/" + k: v for k, v in weights_of(model).items()})
    tensors.update(extra_tensors)
    blob = save_safetensors(tensors)
    write_atomic(directory / CHECKPOINT_TENSORS, blob)
    write_json(directory / CHECKPOINT_STATE, {**progress_state, "scheduler": scheduler,
                                              "tensors_sha256": hashlib.sha256(blob).hexdigest()})


def _load_checkpoint(output_dir: Path) -> tuple[dict, dict]:
    import hashlib

    from safetensors.numpy import load as load_safetensors

    directory = output_dir / CHECKPOINT_DIR
    try:
        state = json.loads((directory / CHECKPOINT_STATE).read_text(encoding="utf-8"))
        blob = (directory / CHECKPOINT_TENSORS).read_bytes()
    except FileNotFoundError:
        raise NewsclfError(f"{output_dir}: no checkpoint to resume from; train without "
                           "--resume") from None
    except ValueError as exc:
        raise NewsclfError(f"{directory / CHECKPOINT_STATE}: damaged ({exc}); train without "
                           "--resume to start over") from None
    if hashlib.sha256(blob).hexdigest() != state.get("tensors_sha256"):
        raise NewsclfError(f"{directory / CHECKPOINT_TENSORS}: does not match "
                           f"{CHECKPOINT_STATE} (interrupted write?); train without --resume")
    return state, load_safetensors(blob)


def train(config: TrainConfig, train_data: LabelledData, dev_data: LabelledData | None,
          output_dir: str | Path, class_names: Sequence[str] | None = None,
          progress: bool = True, log=print, resume: bool = False,
          export: bool = True) -> TrainResult:
    """Train a model and write its directory to ``output_dir``; returns the best dev metrics.

    Without ``dev_data`` every epoch runs and the last one is kept. After each epoch a
    checkpoint (weights, optimizer, schedule, progress) goes to ``output_dir/checkpoint``;
    ``resume=True`` continues from it and ends exactly where an uninterrupted run would.
    ``export=True`` finishes with the Paddle Inference export that fast prediction runs on.
    """
    config.validate()
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise NewsclfError(f"{output_dir}: exists and is not a directory; choose another --output")
    classes = resolve_classes(train_data, dev_data, class_names)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)  # every rank: no race on who makes it
    except OSError as exc:
        raise NewsclfError(f"{output_dir}: cannot create the output directory ({exc.strerror})") from None
    parallel = _Parallel()
    if not parallel.writer:
        return _train_locked(config, train_data, dev_data, output_dir, classes, False,
                             lambda message: None, resume, parallel)
    with _OutputLock(output_dir):
        result = _train_locked(config, train_data, dev_data, output_dir, classes, progress, log,
                               resume, parallel)
        if export:
            from newsclf.predict import export_model

            try:
                export_model(output_dir)
                log("exported for Paddle Inference (fast prediction)")
            except NewsclfError as exc:
                log(f"warning: no inference export, prediction will use the dynamic graph: {exc}")
        return result


def _train_locked(config, train_data, dev_data, output_dir: Path, classes, progress, log,
                  resume, parallel: _Parallel) -> TrainResult:
    from tqdm.auto import tqdm

    from newsclf.evaluate import EvaluationResult
    from newsclf.model import (F, build_model, member_parameter_groups, paddle, predict_logits,
                               softmax, weights_of)

    started = time.perf_counter()
    class_index = {name: i for i, name in enumerate(classes)}
    seed_everything(config.seed)
    tokenizer = Tokenizer(config.tokenizer, config.user_dict)
    train_features = [tokenizer.features(text) for text in train_data.texts]
    vocab = Vocab(parallel.broadcast(
        Vocab.build(train_features, config.min_freq, config.max_vocab).tokens
        if parallel.writer else None))
    train_ids = [vocab.encode(f, config.max_len, tokenizer.n_features) for f in train_features]
    del train_features
    y_train = np.array([class_index[label] for label in train_data.labels], dtype=np.int64)
    dev_ids = encode_texts(tokenizer, vocab, dev_data.texts, config.max_len) if dev_data else None
    log(f"{len(train_ids)} training texts, {len(dev_data) if dev_data else 0} dev texts, "
        f"{len(classes)} classes, vocabulary {len(vocab)}")

    model = build_model(config, len(vocab), len(classes))
    network = paddle.DataParallel(model) if parallel.world > 1 else model
    lengths = np.array([len(ids) for ids in train_ids])
    steps_per_epoch = -(-len(train_ids) // (config.batch_size * parallel.world))
    schedule = _learning_rate(config, steps_per_epoch * config.epochs)
    decay = {p.name for p in model.parameters() if len(p.shape) >= 2}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=schedule, parameters=member_parameter_groups(model),
        weight_decay=config.weight_decay,
        apply_decay_param_fun=lambda name: name in decay,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(config.clip_norm) if config.clip_norm else None)

    run_identity = {"config": config.to_dict(), "classes": classes, "vocab_size": len(vocab),
                    "vocab_head": vocab.tokens[:1000], "n_train": len(train_ids),
                    "n_dev": len(dev_data) if dev_data else 0}
    best, best_epoch, waited, history, first_epoch = None, 0, 0, [], 1
    best_probabilities = None
    if resume:
        state, tensors = _load_checkpoint(output_dir)
        if state["run"] != run_identity:
            changed = sorted(k for k in run_identity if state["run"].get(k) != run_identity[k])
            raise NewsclfError(f"{output_dir}: the checkpoint was made with other "
                               f"{', '.join(changed)}; resume with the same data and settings, "
                               "or train without --resume")
        model.set_state_dict({k[len("model/"):]: paddle.to_tensor(v)
                              for k, v in tensors.items() if k.startswith("model/")})
        _restore_optimizer(optimizer, model, tensors, state["scheduler"])
        history, best_epoch, waited = state["history"], state["best_epoch"], state["waited"]
        best = history[best_epoch - 1] if best_epoch else None
        first_epoch = state["epoch"] + 1
        if "best_dev_probabilities" in tensors:
            best_probabilities = tensors["best_dev_probabilities"]
        log(f"resuming after epoch {state['epoch']} (best so far: epoch {best_epoch})")
        if state.get("stopped"):
            first_epoch = config.epochs + 1
    elif parallel.writer:
        (output_dir / TRAIN_LOG).unlink(missing_ok=True)
    if parallel.world > 1:
        from paddle.io import DistributedBatchSampler

        sampler = DistributedBatchSampler(range(len(train_ids)), config.batch_size,
                                          num_replicas=parallel.world, rank=parallel.rank,
                                          shuffle=True)
        log(f"data-parallel training on {parallel.world} processes")

    save_args = dict(config=config, vocab=vocab, labels=classes, n_features=tokenizer.n_features,
                     extra={"training": {"world_size": parallel.world}})
    stopped = False
    for epoch in range(first_epoch, config.epochs + 1):
        model.train()
        paddle.seed(_epoch_seed(config.seed, epoch) + parallel.rank)
        rng = np.random.RandomState(_epoch_seed(config.seed, epoch))
        if parallel.world > 1:
            sampler.set_epoch(epoch)
            batches = [np.asarray(index) for index in sampler]
        else:
            batches = _batches(lengths, config.batch_size, rng)
        epoch_start, total_loss, seen = time.perf_counter(), 0.0, 0
        bar = tqdm(total=sum(map(len, batches)), desc=f"epoch {epoch}/{config.epochs}", unit="text",
                   disable=None if progress else True, leave=False, dynamic_ncols=True)
        try:
            for index in batches:
                ids = pad_batch([train_ids[i] for i in index])
                if config.token_dropout:
                    drop = (rng.random_sample(ids.shape) < config.token_dropout) & (ids != PAD_ID)
                    ids[drop] = UNK_ID
                # every ensemble member learns on its own loss: the sum of their mean losses
                logits = network(paddle.to_tensor(ids), per_member=True)
                members, n_classes = logits.shape[0], logits.shape[-1]
                labels = paddle.to_tensor(np.tile(y_train[index], members))
                loss = F.cross_entropy(logits.reshape([-1, n_classes]), labels,
                                       label_smoothing=config.label_smoothing) * members
                loss.backward()
                optimizer.step()
                optimizer.clear_grad()
                schedule.step()
                total_loss += float(loss) / members * len(index)
                seen += len(index)
                bar.update(len(index))
                bar.set_postfix(loss=f"{total_loss / seen:.4f}", refresh=False)
        except KeyboardInterrupt:
            bar.close()
            done = epoch - 1
            log(f"interrupted during epoch {epoch}: "
                + (f"the checkpoint after epoch {done} is kept; continue with --resume"
                   if done else "no epoch finished, nothing to resume"))
            raise
        bar.close()
        record = {"epoch": epoch, "train_loss": round(total_loss / seen, 6),
                  "lr": float(schedule.get_lr())}
        if dev_data is not None:
            probabilities = parallel.gather_rows(
                softmax(predict_logits(model, dev_ids[parallel.rank::parallel.world])),
                len(dev_ids))
            dev_result = EvaluationResult.from_predictions(classes, dev_data.texts,
                                                           dev_data.labels, probabilities)
            record.update(dev_accuracy=dev_result.accuracy, dev_macro_f1=dev_result.macro_f1)
        seconds = time.perf_counter() - epoch_start
        seen *= parallel.world
        history.append(record)
        improved = dev_data is None or best is None or record["dev_macro_f1"] > best["dev_macro_f1"]
        if improved:
            best, best_epoch, waited = record, epoch, 0
            if dev_data is not None:
                best_probabilities = probabilities
        else:
            waited += 1
            stopped = waited >= config.patience
        if not parallel.writer:
            if stopped:
                break
            continue
        with open(output_dir / TRAIN_LOG, "a", encoding="utf-8") as handle:
            timing = {"epoch_seconds": round(seconds, 2), "texts_per_second": round(seen / seconds, 1)}
            handle.write(json.dumps({**record, **timing}, ensure_ascii=False) + "\n")
        summary = f"epoch {epoch}: loss {record['train_loss']:.4f}"
        if dev_data is not None:
            summary += f", dev accuracy {record['dev_accuracy']:.4f}, macro-F1 {record['dev_macro_f1']:.4f}"
        log(summary + f" ({seconds:.0f}s)")

        if improved:
            save_model_dir(output_dir, weights=weights_of(model), **save_args)
        extra = {"best_dev_probabilities": best_probabilities} if best_probabilities is not None else {}
        _save_checkpoint(output_dir, model, optimizer, {
            "run": run_identity, "epoch": epoch, "history": history, "best_epoch": best_epoch,
            "waited": waited, "stopped": stopped}, extra)
        if stopped:
            log(f"no dev macro-F1 gain for {waited} epochs: stopping early")
            break

    if not parallel.writer:
        return TrainResult(output_dir, {})
    metrics = {"best_epoch": best_epoch, "epochs_run": len(history),
               "n_train": len(train_ids), "n_dev": len(dev_data) if dev_data else 0}
    if dev_data is not None:
        metrics.update(dev_accuracy=best["dev_accuracy"], dev_macro_f1=best["dev_macro_f1"])
        EvaluationResult.from_predictions(classes, dev_data.texts, dev_data.labels,
                                          best_probabilities).save(output_dir / EVAL_DEV)
    write_json(output_dir / METRICS, metrics)
    shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
    log(f"best epoch {best_epoch}; model saved to {output_dir} "
        f"({time.perf_counter() - started:.0f}s)")
    return TrainResult(output_dir, metrics)
