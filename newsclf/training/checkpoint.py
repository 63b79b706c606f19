"""Checkpoints: everything needed to continue a training run after its last finished epoch.

A checkpoint directory holds one tensors file per epoch (weights, optimizer moments, the best
epoch's weights and dev probabilities) and ``state.json`` (progress, schedule, the name and hash
of the tensors file), written last. The previous epoch's tensors file is removed only after
that, so a process killed at any moment leaves a consistent checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

from newsclf.errors import NewsclfError
from newsclf.files import sha256_bytes, write_atomic, write_json
from newsclf.layouts import CHECKPOINT_DIR, CHECKPOINT_STATE
_OPTIMIZER = "optimizer/"


def _owner(key: str, parameter_names) -> str:
    """The parameter an optimizer-state entry belongs to. Paddle names the entries
    ``<parameter name>_<accumulator>_<n>`` (e.g. ``linear_0.w_0_moment1_0``); parameter names
    can prefix one another, so the longest matching one is the owner."""
    matches = [name for name in parameter_names if key.startswith(name + "_")]
    if not matches:
        raise RuntimeError(f"optimizer state {key!r} belongs to no parameter")
    return max(matches, key=len)


def optimizer_tensors(optimizer, model) -> tuple[dict, dict]:
    """The optimizer's tensors keyed by the model's structured parameter names (the same in
    every process, unlike Paddle's generated names), and the learning-rate scheduler state."""
    structured = {param.name: name for name, param in model.named_parameters()}
    tensors, scheduler = {}, None
    for key, value in optimizer.state_dict().items():
        if key == "LR_Scheduler":
            scheduler = dict(value)
            continue
        owner = _owner(key, structured)
        tensors[_OPTIMIZER + structured[owner] + key[len(owner):]] = value.numpy()
    return tensors, scheduler


def restore_optimizer(optimizer, model, tensors: dict, scheduler: dict) -> None:
    """Load what :func:`optimizer_tensors` saved into ``optimizer`` (for ``model``)."""
    import paddle

    generated = {name: param.name for name, param in model.named_parameters()}
    state = {"LR_Scheduler": scheduler}
    for key, value in tensors.items():
        if key.startswith(_OPTIMIZER):
            key = key[len(_OPTIMIZER):]
            owner = _owner(key, generated)
            state[generated[owner] + key[len(owner):]] = paddle.to_tensor(value)
    optimizer.set_state_dict(state)


def save_checkpoint(directory: Path, progress: dict, tensors: dict) -> None:
    """Write the epoch ``progress["epoch"]``'s checkpoint (see the module docstring)."""
    from safetensors.numpy import save as save_safetensors

    directory.mkdir(parents=True, exist_ok=True)
    blob = save_safetensors(tensors)
    tensors_name = f"state-epoch{progress['epoch']}.safetensors"
    write_atomic(directory / tensors_name, blob)
    write_json(directory / CHECKPOINT_STATE, {**progress, "tensors": tensors_name,
                                              "tensors_sha256": sha256_bytes(blob)})
    for old in directory.glob("state-epoch*.safetensors"):
        if old.name != tensors_name:
            old.unlink(missing_ok=True)


def checkpoint_settings(output_dir: Path) -> dict:
    """The training settings recorded by any checkpoint of the run in ``output_dir`` ({} when
    there is none or it cannot be read: :func:`load_checkpoint` then says what is wrong)."""
    for state_path in sorted((output_dir / CHECKPOINT_DIR).glob("**/" + CHECKPOINT_STATE)):
        try:
            settings = json.loads(state_path.read_text(encoding="utf-8"))["run"]["config"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(settings, dict):
            return settings
    return {}


def load_checkpoint(directory: Path, output_dir: Path) -> tuple[dict, dict]:
    """The progress and tensors of the checkpoint in ``directory``; a missing or inconsistent
    one raises :class:`NewsclfError` saying to train without ``--resume``."""
    from safetensors.numpy import load as load_safetensors

    try:
        state = json.loads((directory / CHECKPOINT_STATE).read_text(encoding="utf-8"))
        tensors_path = directory / str(state.get("tensors"))
        blob = tensors_path.read_bytes()
    except FileNotFoundError:
        raise NewsclfError(f"{output_dir}: no checkpoint to resume from; train without "
                           "--resume (with --overwrite if the directory holds files)") from None
    except ValueError as exc:
        raise NewsclfError(f"{directory / CHECKPOINT_STATE}: damaged ({exc}); train without "
                           "--resume to start over") from None
    if sha256_bytes(blob) != state.get("tensors_sha256"):
        raise NewsclfError(f"{tensors_path}: does not match {CHECKPOINT_STATE} (interrupted "
                           "write?); train without --resume")
    return state, load_safetensors(blob)


# what a checkpoint's records of its run are, for a refused --resume
_RUN_RECORDS = {"classes": "classes", "vocab_size": "vocabulary", "vocab_head": "vocabulary",
                "n_train": "training texts or labels", "train_sha256": "training texts or labels",
                "n_dev": "dev texts or labels", "dev_sha256": "dev texts or labels",
                "unlabeled_sha256": "unlabelled texts", "n_unlabeled": "unlabelled texts",
                "user_dict_sha256": "user dictionary (or one read as it was, by an earlier "
                                    "release: this one cleans it)"}


def check_same_run(saved: dict, identity: dict, output_dir: Path) -> None:
    """Refuse to resume from a checkpoint whose records of its run (``saved``) differ from
    this run's ``identity``, naming what differs (the settings with both values). A record an
    earlier release did not keep (the data's hashes) is not compared, but for the user
    dictionary's: those releases segmented with the file as it was, not cleaned."""
    changed = sorted(k for k in identity if saved.get(
        k, None if k == "user_dict_sha256" else identity[k]) != identity[k])
    if not changed:
        return
    if "config" in changed:
        settings = saved.get("config") or {}
        changed[changed.index("config")] = "settings (" + ", ".join(
            f"{name} {settings.get(name)!r}, now {value!r}"
            for name, value in identity["config"].items() if settings.get(name) != value) + ")"
    changed = list(dict.fromkeys(_RUN_RECORDS.get(name, name) for name in changed))
    raise NewsclfError(f"{output_dir}: the checkpoint was made with other "
                       f"{', '.join(changed)}; resume with the same data and settings, "
                       "or train without --resume")
