"""One encoder's training: the epoch loop, its schedule, batches and seeds, early stopping.

``train_member`` trains the whole model, one member of an ensemble, or the student distilled
from the members (:mod:`.distill`: the same loop on varied batches, towards the teacher's
probabilities on them, :mod:`.student`)
from a :class:`RunSetup` (everything the run prepared: settings, encoded texts, vocabulary) and
reports progress through a callback, so the same loop runs in this process, in a worker process
or under the distributed launcher. After every epoch it writes a checkpoint (:mod:`.checkpoint`),
and every epoch draws its randomness from its own seed, so a run resumed at an epoch boundary
continues exactly as an uninterrupted one would. A loss that is not a finite number, or such
predictions after an epoch, stop the training (:func:`diverged`) before anything of that epoch
is saved.
"""

from __future__ import annotations

import dataclasses
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from newsclf.config import TrainConfig
from newsclf.data import pad_batch
from newsclf.errors import TrainingDiverged
from newsclf.layouts import CHECKPOINT_DIR, CHECKPOINT_STATE
from newsclf.modeldir import save_model_dir
from newsclf.spec import USER_DICT_FILE
from newsclf.tokenize import UserDictionary
from newsclf.training.checkpoint import (check_same_run, load_checkpoint, optimizer_tensors,
                                         restore_optimizer, save_checkpoint)
from newsclf.training.distributed import Parallel
from newsclf.training.objectives import LabelObjective
from newsclf.training.report import EpochReport, distill_round, encoder_name
from newsclf.vocab import Vocab


def seed_everything(seed: int) -> None:
    import paddle

    random.seed(seed)
    np.random.seed(seed)
    paddle.seed(seed)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of one epoch's randomness (batch order, token dropout, dropout)."""
    return (seed * 1_000_003 + epoch) % (2**31 - 1)


def member_seed(seed: int, member: int) -> int:
    """The seed of ensemble member ``member``: the run's seed for the first, then seeds far
    from small integers, so runs with seeds 1, 2, 3 share no member."""
    return seed if member == 0 else (seed + 1_000_033 * member) % (2**31 - 1)


def shuffled_batches(lengths: np.ndarray, batch_size: int,
                     rng: np.random.RandomState) -> list[np.ndarray]:
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


def learning_rate(config: TrainConfig, total_steps: int):
    """Linear warm-up over ``config.warmup`` of the steps, then linear decay to 0."""
    import paddle

    warmup = max(1, int(round(config.warmup * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    return paddle.optimizer.lr.LambdaDecay(config.lr, factor)


@dataclass
class RunSetup:
    """Everything a member's training needs; picklable, so worker processes get it whole."""

    config: TrainConfig
    classes: list
    vocab: Vocab
    train_ids: list
    y_train: np.ndarray
    dev_ids: list | None
    y_dev: np.ndarray | None
    run_identity: dict
    output_dir: Path
    resume: bool
    resume_flags: str  # the options that continue this run if it is interrupted
    # the student's setup: the weights of the members it learns from (see :mod:`.distill`);
    # y_train is then -1 for the unlabelled texts at the end of train_ids
    teacher: list | None = None
    # the settings TrainConfig.for_training_size chose (recorded in training.json)
    automatic: tuple = ()
    # a distilling run's student settings (distill.student_config)
    student_settings: TrainConfig | None = None
    # the weights the model starts from instead of a random initialization (the student's
    # start, see distill.student_start)
    initial_weights: dict | None = None
    # the user dictionary the texts were segmented with, written into the model directory
    user_dict: UserDictionary | None = None
    # the student's pretrained teacher beside the members
    # (newsclf.pretrained.teacher.PretrainedTeacher)
    pretrained: object | None = None
    # token embeddings the model starts from (newsclf.pretrained.embeddings), when it does not
    # start from initial_weights
    initial_embedding: np.ndarray | None = None
    # what Paddle computes on in every process of the run (newsclf.runtime.check_device)
    device: str = "cpu"

    @property
    def student(self) -> bool:
        return self.teacher is not None

    def student_round(self, member: int) -> int:
        """The distillation round of the student trained as ``member`` (from 1)."""
        return distill_round(member, self.config.ensemble_size)

    def checkpoint_dir(self, member: int) -> Path:
        if self.config.ensemble_size == 1:
            return self.output_dir / CHECKPOINT_DIR
        if self.student:
            round_number = self.student_round(member)
            return self.output_dir / CHECKPOINT_DIR / (
                "student" if round_number == 1 else f"student-{round_number}")
        return self.output_dir / CHECKPOINT_DIR / f"member-{member + 1}"

    def model_name(self, member: int) -> str:
        """How log lines name the model ``member`` trains ("" for the only one)."""
        return encoder_name(member, self.config.ensemble_size, self.student)

    def record_tag(self, member: int) -> dict:
        """What tells the model's lines of ``train_log.jsonl`` apart."""
        if self.student:
            round_number = self.student_round(member)
            return {"student": True, **({"round": round_number} if round_number > 1 else {})}
        return {"member": member + 1} if self.config.ensemble_size > 1 else {}

    def model_spec(self):
        return self.config.model_spec(len(self.vocab), len(self.classes))

    def member_spec(self):
        return dataclasses.replace(self.model_spec(), ensemble_size=1)

    def model_dir_contents(self, world_size: int, one_encoder: bool = False,
                           distillation: dict | None = None) -> dict:
        """The arguments of :func:`~newsclf.modeldir.save_model_dir` but the weights: of the
        model the settings describe, or with ``one_encoder`` of one member's architecture (a
        student); ``distillation`` is recorded in ``training.json``."""
        settings = self.config.to_dict()
        if settings["user_dict"]:
            settings["user_dict"] = USER_DICT_FILE
        training = {"settings": settings, "world_size": world_size}
        if self.automatic:
            training["automatic"] = list(self.automatic)
        if distillation is not None:
            training["distillation"] = distillation
        return dict(spec=self.member_spec() if one_encoder else self.model_spec(),
                    vocab=self.vocab, labels=self.classes, training=training,
                    user_dict=self.user_dict)


@dataclass
class MemberResult:
    seed: int
    history: list
    best_epoch: int
    weights: dict
    probabilities: np.ndarray | None

    @classmethod
    def from_checkpoint(cls, seed: int, state: dict, tensors: dict) -> "MemberResult":
        weights = {k[len("best/"):]: v for k, v in tensors.items() if k.startswith("best/")}
        return cls(seed, state["history"], state["best_epoch"], weights,
                   tensors.get("best_dev_probabilities"))


# Paddle trains on one thread. A model that trains alone in its process, the only encoder or
# the student after the members, would leave a second core idle: on two threads its steps take
# about 17% less time. Two, not the core count, because the thread count changes the last bits
# of the result, which should not depend on the machine (members train on one thread each,
# side by side, in worker processes or not).
ALONE_THREADS = 2


def math_threads_for(setup: RunSetup, parallel: Parallel) -> int:
    """How many threads Paddle's math uses to train a model of ``setup`` in this process."""
    alone = setup.student or setup.config.ensemble_size == 1
    return min(ALONE_THREADS, os.cpu_count() or 1) if alone and parallel.world == 1 else 1


def train_member(member: int, setup: RunSetup, report, parallel: Parallel) -> MemberResult:
    """Train one model (the whole model, one ensemble member, or the student with member
    number ``ensemble_size``) with its own seed, early stopping and checkpoint; returns its
    best epoch's weights and dev probabilities."""
    from newsclf.runtime import math_threads

    with math_threads(math_threads_for(setup, parallel)):
        return _train_member(member, setup, report, parallel)


def _train_member(member: int, setup: RunSetup, report, parallel: Parallel) -> MemberResult:
    training = _Training(member, setup, report, parallel)
    progress = training.restored()
    if isinstance(progress, MemberResult):  # it had finished before the run was interrupted
        return progress
    saved = progress.epoch  # the last epoch whose checkpoint is complete
    epoch = saved + 1
    try:
        for epoch in range(saved + 1, setup.config.epochs + 1):
            record, probabilities, timing = training.train_epoch(epoch)
            improved, stopped = progress.update(record, training.model, probabilities,
                                                setup.config)
            if not parallel.writer:
                if stopped:
                    break
                continue
            training.report_epoch(record, timing, stopped)
            training.save(progress, improved, finished=stopped or epoch == setup.config.epochs)
            saved = epoch
            if stopped:
                report("skip", len(setup.train_ids) * (setup.config.epochs - epoch))
                break
    except KeyboardInterrupt:
        training.report_interrupted(epoch, saved)
        raise
    return MemberResult(training.seed, progress.history, progress.best_epoch,
                        progress.best_weights, progress.best_probabilities)


@dataclass
class Progress:
    """Where a model's training stands: its epochs' records and, for early stopping, its best
    epoch (by dev macro-F1; the last one without dev texts) and the epochs since."""

    history: list = field(default_factory=list)
    best_epoch: int = 0
    waited: int = 0
    best_weights: dict | None = None
    best_probabilities: np.ndarray | None = None

    @property
    def epoch(self) -> int:
        return len(self.history)

    def update(self, record: dict, model, probabilities, config: TrainConfig) -> tuple[bool, bool]:
        """Add the epoch ``record`` of ``model`` (its dev ``probabilities``, None without dev
        texts); returns whether it is the best so far and whether the training stops early."""
        from newsclf.model.layers import weights_of

        self.history.append(record)
        best = self.history[self.best_epoch - 1] if self.best_epoch else None
        if probabilities is None or best is None or record["dev_macro_f1"] > best["dev_macro_f1"]:
            self.best_epoch, self.waited = record["epoch"], 0
            self.best_weights = weights_of(model)
            if probabilities is not None:
                self.best_probabilities = probabilities
            return True, False
        self.waited += 1
        return False, self.waited >= config.patience and record["epoch"] < config.epochs


class _Training:
    """One model's training in this process: its network, optimizer and schedule, objective
    and checkpoint, for :func:`train_member`'s epoch loop."""

    def __init__(self, member: int, setup: RunSetup, report, parallel: Parallel):
        from newsclf.runtime import configure_paddle, use_device

        paddle = configure_paddle()
        use_device(setup.device)
        from newsclf.model.layers import build_network, load_weights

        self.member, self.setup, self.report, self.parallel = member, setup, report, parallel
        config = self.config = setup.config
        self.seed = member_seed(config.seed, member)
        self.name = setup.model_name(member)
        seed_everything(self.seed)
        self.model = model = build_network(setup.member_spec(), dropout=config.dropout,
                                           attn_dropout=config.attn_dropout,
                                           emb_dropout=config.emb_dropout)
        if setup.initial_weights is not None:
            load_weights(model, setup.initial_weights)
        elif setup.initial_embedding is not None:
            model.embedding.weight.set_value(setup.initial_embedding)
        self.network = paddle.DataParallel(model) if parallel.world > 1 else model
        self.lengths = np.array([len(ids) for ids in setup.train_ids])
        steps_per_epoch = -(-len(setup.train_ids) // (config.batch_size * parallel.world))
        self.schedule = learning_rate(config, steps_per_epoch * config.epochs)
        decay = {p.name for p in model.parameters() if len(p.shape) >= 2}
        self.optimizer = paddle.optimizer.AdamW(
            learning_rate=self.schedule, parameters=model.parameters(),
            weight_decay=config.weight_decay,
            apply_decay_param_fun=lambda param_name: param_name in decay,
            # auto_skip_clip: no multiplication by 1 when the norm is within the limit (the
            # same result, 10% of a step saved)
            grad_clip=(paddle.nn.ClipGradByGlobalNorm(config.clip_norm, auto_skip_clip=True)
                       if config.clip_norm else None))
        if setup.student:
            from newsclf.training.student import StudentObjective

            self.objective = StudentObjective(setup, setup.teacher)
        else:
            self.objective = LabelObjective(setup)
        self.checkpoint_dir = setup.checkpoint_dir(member)
        self.identity = {**setup.run_identity, "member": member}
        # an ensemble member (or the student) that had not saved its first epoch when the run
        # stopped starts afresh (members are independent, the student starts after them); a
        # run with no checkpoint at all is refused by the caller
        self.others_saved = config.ensemble_size > 1 and any(
            (setup.output_dir / CHECKPOINT_DIR).glob("*/" + CHECKPOINT_STATE))

    def restored(self) -> "Progress | MemberResult":
        """The progress to continue from: none without ``--resume``, else the checkpoint's
        (the model and optimizer restored), or the result of a model that had finished."""
        setup, report, name = self.setup, self.report, self.name
        if not setup.resume:
            return Progress()
        if self.others_saved and not (self.checkpoint_dir / CHECKPOINT_STATE).is_file():
            report("log", f"{name}has no checkpoint yet: it starts from its first epoch")
            return Progress()
        from newsclf.model.layers import load_weights

        state, tensors = load_checkpoint(self.checkpoint_dir, setup.output_dir)
        check_same_run(state["run"], self.identity, setup.output_dir)
        result = MemberResult.from_checkpoint(self.seed, state, tensors)
        if state.get("finished"):
            report("skip", len(setup.train_ids) * self.config.epochs)
            report("log", f"{name}already finished (best epoch {state['best_epoch']})")
            _report_earlier_epochs(report, self.member, setup, state["history"], finished=True)
            return result
        load_weights(self.model, {k[len("model/"):]: v for k, v in tensors.items()
                                  if k.startswith("model/")})
        restore_optimizer(self.optimizer, self.model, tensors, state["scheduler"])
        progress = Progress(state["history"], state["best_epoch"], state["waited"],
                            result.weights, result.probabilities)
        report("skip", len(setup.train_ids) * state["epoch"])
        report("log", f"{name}resuming after epoch {state['epoch']} (best so far: epoch "
                      f"{progress.best_epoch})")
        _report_earlier_epochs(report, self.member, setup, progress.history, finished=False)
        return progress

    def train_epoch(self, epoch: int) -> tuple[dict, np.ndarray | None, dict]:
        """Train one epoch; returns its record (loss, learning rate, dev scores), the dev
        probabilities after it (None without dev texts) and its timing."""
        import paddle

        setup, parallel, config, seed = self.setup, self.parallel, self.config, self.seed
        self.model.train()
        paddle.seed(epoch_seed(seed, epoch) + parallel.rank)
        rng = np.random.RandomState(epoch_seed(seed, epoch))
        # every process draws the same global batches and trains on its share of each
        batches = shuffled_batches(self.lengths, config.batch_size * parallel.world, rng)
        if parallel.world > 1:  # each process its own token dropout
            rng = np.random.RandomState([epoch_seed(seed, epoch), parallel.rank])
        epoch_start, total_loss, seen, epoch_texts = time.perf_counter(), 0.0, 0, 0
        for step, batch in enumerate(batches, 1):
            index = parallel.share(batch)
            ids = pad_batch([setup.train_ids[i] for i in index])
            varied = self.objective.vary(ids, rng)
            loss = self.objective.loss(self.network(paddle.to_tensor(ids)), index, varied)
            loss.backward()
            self.optimizer.step()
            self.optimizer.clear_grad()
            self.schedule.step()
            # the step's one read of the loss: it waits for the step, checking it is free
            step_loss = float(loss)
            if not math.isfinite(step_loss):
                raise diverged(setup, self.member, "loss", step_loss,
                               f"at epoch {epoch} (step {step})")
            total_loss += step_loss * len(index)
            seen += len(index)
            epoch_texts += len(batch)
            self.report("texts", len(batch))
        record = {"epoch": epoch, "train_loss": round(total_loss / seen, 6),
                  "lr": float(self.schedule.get_lr())}
        probabilities = self._evaluate(epoch, record)
        seconds = time.perf_counter() - epoch_start
        return record, probabilities, {"epoch_seconds": round(seconds, 2),
                                       "texts_per_second": round(epoch_texts / seconds, 1)}

    def _evaluate(self, epoch: int, record: dict) -> np.ndarray | None:
        """The dev probabilities after ``epoch`` (their scores added to ``record``); outputs
        that are not finite stop the training."""
        from newsclf.evaluation.metrics import accuracy_and_macro_f1
        from newsclf.model.inference import predict_scores, softmax

        setup, parallel = self.setup, self.parallel
        probabilities = None
        if setup.y_dev is not None:
            probabilities = parallel.gather_rows(
                softmax(predict_scores(self.model,
                                       setup.dev_ids[parallel.rank::parallel.world])),
                len(setup.dev_ids))
        # the epoch's last step may have blown the weights up after its loss was read (a
        # batch of training texts shows it when there are no dev texts)
        outputs = (probabilities if probabilities is not None else
                   predict_scores(self.model, setup.train_ids[:self.config.batch_size]))
        if not np.isfinite(outputs).all():
            raise diverged(setup, self.member, "predictions", math.nan, f"after epoch {epoch}")
        if probabilities is not None:
            accuracy, macro_f1 = accuracy_and_macro_f1(
                setup.y_dev, probabilities.argmax(axis=1), len(setup.classes))
            record.update(dev_accuracy=accuracy, dev_macro_f1=macro_f1)
        return probabilities

    def report_epoch(self, record: dict, timing: dict, stopped: bool) -> None:
        self.report("epoch", EpochReport(self.member, self.setup.student,
                                         {**self.setup.record_tag(self.member), **record,
                                          **timing}, stopped_early=stopped))

    def save(self, progress: Progress, improved: bool, finished: bool) -> None:
        """The checkpoint after the epoch just trained; a model trained alone is also written
        as the model directory whenever it improves, usable from its first epoch on."""
        from newsclf.model.layers import weights_of

        setup = self.setup
        if improved and self.config.ensemble_size == 1:
            save_model_dir(setup.output_dir, weights=progress.best_weights,
                           **setup.model_dir_contents(self.parallel.world))
        extra = {"best/" + k: v for k, v in progress.best_weights.items()}
        if progress.best_probabilities is not None:
            extra["best_dev_probabilities"] = progress.best_probabilities
        optimizer_state, scheduler = optimizer_tensors(self.optimizer, self.model)
        save_checkpoint(self.checkpoint_dir, {
            "run": self.identity, "epoch": progress.epoch, "history": progress.history,
            "best_epoch": progress.best_epoch, "waited": progress.waited, "finished": finished,
            "scheduler": scheduler}, {
            **optimizer_state, **{"model/" + k: v for k, v in weights_of(self.model).items()},
            **extra})

    def report_interrupted(self, epoch: int, saved: int) -> None:
        if saved or self.others_saved:
            kept = (f"the checkpoint after epoch {saved} is kept" if saved else
                    "the checkpoints of the models trained before it are kept")
            kept += f"; continue with {self.setup.resume_flags}"
        else:
            kept = "no epoch finished, nothing to resume"
        self.report("log", f"interrupted during {self.name}epoch {epoch}: {kept}")


def diverged(setup: RunSetup, member: int, what: str, value: float,
             when: str) -> TrainingDiverged:
    """The error that stops the training of ``member`` when ``what`` (its loss, its
    predictions) became ``value`` (not finite) ``when``, saying which settings to change."""
    config, name = setup.config, setup.model_name(member).strip()
    whose = f" of {'the ' if setup.student else ''}{name}" if name else ""
    fixes = [f"lower --lr (now {config.lr:g})"]
    if setup.student:  # its loss is scaled by the square of its temperature
        fixes.append(f"--distill-temperature (now {config.distill_temperature:g})")
    if not config.clip_norm:
        fixes.append("turn gradient clipping on (--clip-norm 1)")
    return TrainingDiverged(f"training diverged: the {what}{whose} became {value} {when}; "
                            + " or ".join(fixes))


def _report_earlier_epochs(report, member: int, setup: RunSetup, history: list,
                           finished: bool) -> None:
    """Report the epochs a resumed model trained before the run was interrupted (its
    checkpoint's ``history``), so the epoch lines can show it beside the models still
    training."""
    stopped_early = finished and len(history) < setup.config.epochs
    for record in history:
        report("epoch", EpochReport(member, setup.student, record, earlier=True,
                                    stopped_early=stopped_early and record is history[-1]))
