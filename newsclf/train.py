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


CHECKPOINT_DIR, CHECKPOINT_STATE = "checkpoint", "state.json"
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


def _save_checkpoint(directory: Path, model, optimizer, progress_state: dict,
                     extra_tensors: dict) -> None:
    """Everything needed to continue after the last finished epoch. The tensors go to a new
    file per epoch and ``state.json``, written last, names it; the previous epoch's file is
    removed only then, so a process killed at any moment leaves a consistent checkpoint."""
    import hashlib

    from safetensors.numpy import save as save_safetensors

    from newsclf.model import weights_of

    directory.mkdir(parents=True, exist_ok=True)
    tensors, scheduler = _optimizer_state(optimizer, model)
    tensors.update({"model/" + k: v for k, v in weights_of(model).items()})
    tensors.update(extra_tensors)
    blob = save_safetensors(tensors)
    tensors_name = f"state-epoch{progress_state['epoch']}.safetensors"
    write_atomic(directory / tensors_name, blob)
    write_json(directory / CHECKPOINT_STATE, {**progress_state, "scheduler": scheduler,
                                              "tensors": tensors_name,
                                              "tensors_sha256": hashlib.sha256(blob).hexdigest()})
    for old in directory.glob("state-epoch*.safetensors"):
        if old.name != tensors_name:
            old.unlink(missing_ok=True)


def _load_checkpoint(directory: Path, output_dir: Path) -> tuple[dict, dict]:
    import hashlib

    from safetensors.numpy import load as load_safetensors

    try:
        state = json.loads((directory / CHECKPOINT_STATE).read_text(encoding="utf-8"))
        tensors_path = directory / str(state.get("tensors"))
        blob = tensors_path.read_bytes()
    except FileNotFoundError:
        raise NewsclfError(f"{output_dir}: no checkpoint to resume from; train without "
                           "--resume") from None
    except ValueError as exc:
        raise NewsclfError(f"{directory / CHECKPOINT_STATE}: damaged ({exc}); train without "
                           "--resume to start over") from None
    if hashlib.sha256(blob).hexdigest() != state.get("tensors_sha256"):
        raise NewsclfError(f"{tensors_path}: does not match "
                           f"{CHECKPOINT_STATE} (interrupted write?); train without --resume")
    return state, load_safetensors(blob)


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member``: the run's seed for the first, then seeds far
    from small integers, so runs with seeds 1, 2, 3 share no member."""
    return seed if member == 0 else (seed + 1_000_033 * member) % (2**31 - 1)


@dataclass
class _Setup:
    """Everything a member's training needs; picklable, so worker processes get it whole."""

    config: TrainConfig
    classes: list
    vocab: Vocab
    n_features: int
    train_ids: list
    y_train: np.ndarray
    dev_ids: list | None
    dev_data: LabelledData | None
    run_identity: dict
    output_dir: Path
    resume: bool

    def checkpoint_dir(self, member: int) -> Path:
        if self.config.ensemble_size == 1:
            return self.output_dir / CHECKPOINT_DIR
        return self.output_dir / CHECKPOINT_DIR / f"member-{member + 1}"

    def save_args(self, world_size: int) -> dict:
        return dict(config=self.config, vocab=self.vocab, labels=self.classes,
                    n_features=self.n_features, extra={"training": {"world_size": world_size}})


@dataclass
class _MemberResult:
    seed: int
    history: list
    best_epoch: int
    weights: dict
    probabilities: np.ndarray | None

    @classmethod
    def from_checkpoint(cls, seed: int, state: dict, tensors: dict) -> "_MemberResult":
        weights = {k[len("best/"):]: v for k, v in tensors.items() if k.startswith("best/")}
        return cls(seed, state["history"], state["best_epoch"], weights,
                   tensors.get("best_dev_probabilities"))


def train(config: TrainConfig, train_data: LabelledData, dev_data: LabelledData | None,
          output_dir: str | Path, class_names: Sequence[str] | None = None,
          progress: bool = True, log=print, resume: bool = False,
          export: bool = True, workers: int | None = None) -> TrainResult:
    """Train a model and write its directory to ``output_dir``; returns the best dev metrics.

    Without ``dev_data`` every epoch runs and the last one is kept. After each epoch a
    checkpoint (weights, optimizer, schedule, progress) goes to ``output_dir/checkpoint``;
    ``resume=True`` continues from it and ends exactly where an uninterrupted run would.
    ``export=True`` finishes with the Paddle Inference export that fast prediction runs on.
    With ``config.ensemble_size > 1`` each member trains on its own (own seed, early stopping
    and checkpoint), ``workers`` of them at once in separate processes (default: as many as
    there are members and CPU cores); the result does not depend on ``workers``.
    """
    config.validate()
    output_dir = Path(output_dir)
    if workers is not None and workers < 1:
        raise NewsclfError(f"workers must be at least 1, got {workers}")
    if output_dir.exists() and not output_dir.is_dir():
        raise NewsclfError(f"{output_dir}: exists and is not a directory; choose another --output")
    classes = resolve_classes(train_data, dev_data, class_names)
    try:
        output_dir.mkdir(parents=True, exist_ok=True)  # every rank: no race on who makes it
    except OSError as exc:
        raise NewsclfError(f"{output_dir}: cannot create the output directory ({exc.strerror})") from None
    parallel = _Parallel()
    if workers is None:
        import os

        workers = min(config.ensemble_size, os.cpu_count() or 1)
    if not parallel.writer:
        return _train_locked(config, train_data, dev_data, output_dir, classes, False,
                             lambda message: None, resume, parallel, 1)
    with _OutputLock(output_dir):
        result = _train_locked(config, train_data, dev_data, output_dir, classes, progress, log,
                               resume, parallel, workers)
        if export:
            from newsclf.predict import export_model

            try:
                export_model(output_dir)
                log("exported for Paddle Inference (fast prediction)")
            except NewsclfError as exc:
                log(f"warning: no inference export, prediction will use the dynamic graph: {exc}")
        return result


class _Reporter:
    """Where members' reports go: log lines, ``train_log.jsonl`` records and one progress bar
    for the whole run (texts seen over all members and epochs)."""

    def __init__(self, log, progress: bool, total_texts: int, train_log: Path | None):
        from tqdm.auto import tqdm

        self.log, self.train_log = log, train_log
        self.bar = tqdm(total=total_texts, desc="training", unit="text", leave=False,
                        dynamic_ncols=True, disable=None if progress else True)

    def __call__(self, kind: str, payload) -> None:
        if kind == "texts":
            self.bar.update(payload)
        elif kind == "skip":  # a member stopped early: its remaining epochs will not run
            self.bar.total -= payload
            self.bar.refresh()
        elif kind == "record":
            if self.train_log is not None:
                with open(self.train_log, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(payload, ensure_ascii=False) + "\n")
        elif kind == "log":
            self.bar.clear()
            self.log(payload)
            self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def _train_locked(config, train_data, dev_data, output_dir: Path, classes, progress, log,
                  resume, parallel: _Parallel, workers: int) -> TrainResult:
    from newsclf.evaluate import EvaluationResult

    started = time.perf_counter()
    class_index = {name: i for i, name in enumerate(classes)}
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
    run_identity = {"config": config.to_dict(), "classes": classes, "vocab_size": len(vocab),
                    "vocab_head": vocab.tokens[:1000], "n_train": len(train_ids),
                    "n_dev": len(dev_data) if dev_data else 0}
    setup = _Setup(config, classes, vocab, tokenizer.n_features, train_ids, y_train, dev_ids,
                   dev_data, run_identity, output_dir, resume)
    if not resume and parallel.writer:
        (output_dir / TRAIN_LOG).unlink(missing_ok=True)
    n_members = config.ensemble_size
    reporter = _Reporter(log, progress, len(train_ids) * config.epochs * n_members,
                         output_dir / TRAIN_LOG if parallel.writer else None)
    try:
        if workers > 1 and n_members > 1 and parallel.world == 1:
            results = _train_members_in_processes(setup, reporter, workers)
        else:
            results = [_train_member(member, setup, reporter, parallel)
                       for member in range(n_members)]
    finally:
        reporter.close()
    if not parallel.writer:
        return TrainResult(output_dir, {})

    metrics = {"n_train": len(train_ids), "n_dev": len(dev_data) if dev_data else 0}
    if n_members == 1:
        weights, probabilities = results[0].weights, results[0].probabilities
        metrics.update(best_epoch=results[0].best_epoch, epochs_run=len(results[0].history))
    else:
        from newsclf.model import ensemble_weights

        weights = ensemble_weights([result.weights for result in results])
        probabilities = (None if dev_data is None else
                         np.mean([result.probabilities for result in results], axis=0))
        metrics.update(ensemble_size=n_members, members=[
            {"seed": r.seed, "best_epoch": r.best_epoch, "epochs_run": len(r.history),
             **{k: r.history[r.best_epoch - 1][k] for k in ("dev_accuracy", "dev_macro_f1")
                if dev_data is not None}} for r in results])
    save_model_dir(output_dir, weights=weights, **setup.save_args(parallel.world))
    if dev_data is not None:
        dev_result = EvaluationResult.from_predictions(classes, dev_data.texts, dev_data.labels,
                                                       probabilities)
        metrics.update(dev_accuracy=dev_result.accuracy, dev_macro_f1=dev_result.macro_f1)
        dev_result.save(output_dir / EVAL_DEV)
    write_json(output_dir / METRICS, metrics)
    shutil.rmtree(output_dir / CHECKPOINT_DIR, ignore_errors=True)
    kept = (f"best epoch {results[0].best_epoch}" if n_members == 1 else
            f"{n_members} members, best epochs {', '.join(str(r.best_epoch) for r in results)}")
    log(f"{kept}; model saved to {output_dir} ({time.perf_counter() - started:.0f}s)")
    return TrainResult(output_dir, metrics)


def _train_members_in_processes(setup: _Setup, report, workers: int) -> list[_MemberResult]:
    """Train the ensemble members in up to ``workers`` processes at once (one CPU core each:
    Paddle's CPU kernels use one thread); their reports reach ``report`` here. Each member
    leaves its finished result in its checkpoint, which is read back from there."""
    import os
    import pickle
    import queue as queue_module
    import tempfile

    from newsclf.workers import message_queue, start_process

    messages = message_queue()
    waiting, running, errors = list(range(setup.config.ensemble_size)), {}, {}
    # The setup (every encoded text) reaches the members through a file, not as a process
    # argument: multiprocessing writes arguments into a pipe whose read end it keeps open itself,
    # so a member dying while it starts would leave this process blocked on that write forever.
    scratch = tempfile.TemporaryDirectory(prefix="newsclf-train-")
    setup_path = Path(scratch.name) / "setup.pickle"
    setup_path.write_bytes(pickle.dumps(setup, protocol=pickle.HIGHEST_PROTOCOL))

    def pump(timeout: float) -> None:
        try:
            while True:
                kind, payload = messages.get(timeout=timeout)
                timeout = 0
                if kind == "error":
                    errors[payload[0]] = payload[1]
                else:
                    report(kind, payload)
        except queue_module.Empty:
            pass

    try:
        while waiting or running:
            while waiting and len(running) < workers:
                member = waiting.pop(0)
                running[member] = start_process(_member_process,
                                                (member, str(setup_path), messages, os.getpid()))
            pump(0.2)
            for member, process in list(running.items()):
                if process.exitcode is None:
                    continue
                del running[member]
                if process.exitcode != 0:
                    pump(1.0)
                    if member in errors:
                        raise NewsclfError(errors[member])
                    raise RuntimeError(f"training ensemble member {member + 1} failed (exit "
                                       f"code {process.exitcode}); its error is printed above")
        pump(0.5)
    except BaseException as exc:
        for process in running.values():
            process.kill()
            process.join()
        if isinstance(exc, KeyboardInterrupt):
            report("log", "interrupted: every member's last finished epoch is kept in "
                          "its checkpoint; continue with --resume")
        raise
    finally:
        scratch.cleanup()
    results = []
    for member in range(setup.config.ensemble_size):
        state, tensors = _load_checkpoint(setup.checkpoint_dir(member), setup.output_dir)
        results.append(_MemberResult.from_checkpoint(member_seed(setup.config.seed, member),
                                                     state, tensors))
    return results


def _member_process(member: int, setup_path: str, messages, parent_pid: int) -> None:
    """A worker process's body: train one member, reporting through ``messages``."""
    import os
    import pickle
    import signal
    import sys

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when members stop
    setup = pickle.loads(Path(setup_path).read_bytes())  # written by this run's parent

    def report(kind, payload):
        if os.getppid() != parent_pid:  # the parent is gone (killed): stop, the checkpoint stays
            os._exit(1)
        messages.put((kind, payload))

    try:
        _train_member(member, setup, report, _Parallel())
    except NewsclfError as exc:
        messages.put(("error", (member, str(exc))))
        messages.close()
        messages.join_thread()
        sys.exit(2)
    messages.close()
    messages.join_thread()


def _train_member(member: int, setup: _Setup, report, parallel: _Parallel) -> _MemberResult:
    """Train one model (the whole model, or one ensemble member) with its own seed, early
    stopping and checkpoint; returns its best epoch's weights and dev probabilities."""
    import dataclasses

    from newsclf.evaluate import EvaluationResult
    from newsclf.model import F, build_model, paddle, predict_logits, softmax, weights_of

    config, dev_data, train_ids = setup.config, setup.dev_data, setup.train_ids
    n_members = config.ensemble_size
    seed = member_seed(config.seed, member)
    name = "" if n_members == 1 else f"member {member + 1}/{n_members} "
    seed_everything(seed)
    model = build_model(dataclasses.replace(config, ensemble_size=1, seed=seed),
                        len(setup.vocab), len(setup.classes))
    network = paddle.DataParallel(model) if parallel.world > 1 else model
    lengths = np.array([len(ids) for ids in train_ids])
    steps_per_epoch = -(-len(train_ids) // (config.batch_size * parallel.world))
    schedule = _learning_rate(config, steps_per_epoch * config.epochs)
    decay = {p.name for p in model.parameters() if len(p.shape) >= 2}
    optimizer = paddle.optimizer.AdamW(
        learning_rate=schedule, parameters=model.parameters(), weight_decay=config.weight_decay,
        apply_decay_param_fun=lambda param_name: param_name in decay,
        grad_clip=paddle.nn.ClipGradByGlobalNorm(config.clip_norm) if config.clip_norm else None)

    checkpoint_dir = setup.checkpoint_dir(member)
    identity = {**setup.run_identity, "member": member}
    best, best_epoch, waited, history, first_epoch = None, 0, 0, [], 1
    best_probabilities, best_weights = None, None
    if setup.resume:
        state, tensors = _load_checkpoint(checkpoint_dir, setup.output_dir)
        if state["run"] != identity:
            changed = sorted(k for k in identity if state["run"].get(k) != identity[k])
            raise NewsclfError(f"{setup.output_dir}: the checkpoint was made with other "
                               f"{', '.join(changed)}; resume with the same data and settings, "
                               "or train without --resume")
        saved_result = _MemberResult.from_checkpoint(seed, state, tensors)
        if state.get("finished"):
            report("skip", len(train_ids) * config.epochs)
            report("log", f"{name}already finished (best epoch {state['best_epoch']})")
            return saved_result
        model.set_state_dict({k[len("model/"):]: paddle.to_tensor(v)
                              for k, v in tensors.items() if k.startswith("model/")})
        _restore_optimizer(optimizer, model, tensors, state["scheduler"])
        history, best_epoch, waited = state["history"], state["best_epoch"], state["waited"]
        best = history[best_epoch - 1] if best_epoch else None
        first_epoch = state["epoch"] + 1
        best_probabilities, best_weights = saved_result.probabilities, saved_result.weights
        report("skip", len(train_ids) * state["epoch"])
        report("log", f"{name}resuming after epoch {state['epoch']} (best so far: epoch "
                      f"{best_epoch})")
    if parallel.world > 1:
        from paddle.io import DistributedBatchSampler

        sampler = DistributedBatchSampler(range(len(train_ids)), config.batch_size,
                                          num_replicas=parallel.world, rank=parallel.rank,
                                          shuffle=True)
        report("log", f"data-parallel training on {parallel.world} processes")

    saved = first_epoch - 1  # the last epoch whose checkpoint is complete
    try:
        for epoch in range(first_epoch, config.epochs + 1):
            model.train()
            paddle.seed(_epoch_seed(seed, epoch) + parallel.rank)
            rng = np.random.RandomState(_epoch_seed(seed, epoch))
            if parallel.world > 1:
                sampler.set_epoch(epoch)
                batches = [np.asarray(index) for index in sampler]
            else:
                batches = _batches(lengths, config.batch_size, rng)
            epoch_start, total_loss, seen = time.perf_counter(), 0.0, 0
            for index in batches:
                ids = pad_batch([train_ids[i] for i in index])
                if config.token_dropout:
                    drop = (rng.random_sample(ids.shape) < config.token_dropout) & (ids != PAD_ID)
                    ids[drop] = UNK_ID
                logits = network(paddle.to_tensor(ids))
                loss = F.cross_entropy(logits, paddle.to_tensor(setup.y_train[index]),
                                       label_smoothing=config.label_smoothing)
                loss.backward()
                optimizer.step()
                optimizer.clear_grad()
                schedule.step()
                total_loss += float(loss) * len(index)
                seen += len(index)
                report("texts", len(index) * parallel.world)
            record = {"epoch": epoch, "train_loss": round(total_loss / seen, 6),
                      "lr": float(schedule.get_lr())}
            if dev_data is not None:
                probabilities = parallel.gather_rows(
                    softmax(predict_logits(model, setup.dev_ids[parallel.rank::parallel.world])),
                    len(setup.dev_ids))
                dev_result = EvaluationResult.from_predictions(setup.classes, dev_data.texts,
                                                               dev_data.labels, probabilities)
                record.update(dev_accuracy=dev_result.accuracy, dev_macro_f1=dev_result.macro_f1)
            seconds = time.perf_counter() - epoch_start
            seen *= parallel.world
            history.append(record)
            improved = dev_data is None or best is None or record["dev_macro_f1"] > best["dev_macro_f1"]
            stopped = False
            if improved:
                best, best_epoch, waited = record, epoch, 0
                best_weights = weights_of(model)
                if dev_data is not None:
                    best_probabilities = probabilities
            else:
                waited += 1
                stopped = waited >= config.patience
            if not parallel.writer:
                if stopped:
                    break
                continue
            timing = {"epoch_seconds": round(seconds, 2), "texts_per_second": round(seen / seconds, 1)}
            report("record", {**({"member": member + 1} if n_members > 1 else {}), **record, **timing})
            summary = f"{name}epoch {epoch}: loss {record['train_loss']:.4f}"
            if dev_data is not None:
                summary += f", dev accuracy {record['dev_accuracy']:.4f}, macro-F1 {record['dev_macro_f1']:.4f}"
            report("log", summary + f" ({seconds:.0f}s)")

            if improved and n_members == 1:  # a usable model directory from the first epoch on
                save_model_dir(setup.output_dir, weights=best_weights,
                               **setup.save_args(parallel.world))
            finished = stopped or epoch == config.epochs
            extra = {"best/" + k: v for k, v in best_weights.items()}
            if best_probabilities is not None:
                extra["best_dev_probabilities"] = best_probabilities
            _save_checkpoint(checkpoint_dir, model, optimizer, {
                "run": identity, "epoch": epoch, "history": history, "best_epoch": best_epoch,
                "waited": waited, "finished": finished}, extra)
            saved = epoch
            if stopped:
                report("skip", len(train_ids) * (config.epochs - epoch))
                report("log", f"{name}no dev macro-F1 gain for {waited} epochs: stopping early")
                break
    except KeyboardInterrupt:
        report("log", f"interrupted during {name}epoch {epoch}: "
               + (f"the checkpoint after epoch {saved} is kept; continue with --resume"
                  if saved else "no epoch finished, nothing to resume"))
        raise
    return _MemberResult(seed, history, best_epoch, best_weights, best_probabilities)
