"""`RunDir`: the layout of a run directory, and what its phases record.

Every training command (`train`: the teacher phase alone; `run`: teacher ->
distil -> align) writes one layout::

    RUN/config.yaml              the resolved config of the last command
                                 (a loaded teacher's `train`: the settings
                                 that trained it, when known)
    RUN/metrics.json             per phase valid/test AUC, logloss, ...
    RUN/<phase>/weights/model.*  weights after the phase (TF checkpoint)
    RUN/<phase>/done.json        the commit point: the phase's fingerprint,
                                 the settings it was trained with, its info
    RUN/<phase>/backup/          training state while the phase runs
                                 (`TrainingBackup`), with `fingerprint.json`
    RUN/tb/<phase>/              TensorBoard logs

Phases are "teacher", "distill" and "align". A phase's *fingerprint* is
the flat mapping of everything its result depends on: the dataset's
fingerprint, the model classes and their resolved settings, the training
settings of the phase and of the phases before it. A rerun reuses a
finished phase only when its fingerprint is unchanged; `check_phases`
otherwise stops before any work, naming the keys that differ.
`restart_from(phase)` removes a phase and the phases after it.
"""

from __future__ import annotations

import json
import os
import shutil
from typing import Any

import yaml

PHASES = ("teacher", "distill", "align")
# What `export --phase` can take from a run (`tfdsmlp.export.run_models`):
# best (selected by validation), the stage-2 DS-MLP, the teacher, the
# stage-1 student, one stream of the stage-2 DS-MLP alone.
EXPORT_PHASES = ("best", "dsmlp", "teacher", "student", "dsmlp_main",
                 "dsmlp_parallel")
# Keys a resumed (unfinished) phase may change: the restored learning rate
# is scaled by new / old (`TrainingBackup`), e.g. after a divergence.
RESUMABLE_CHANGES = ("train.learning_rate",)
# Settings that change what a phase records, not what it learns.
NON_RESULT_SETTINGS = ("train.profile_batches",)


class RunDirError(ValueError):
    """A run directory does not fit the command (other settings or data,
    missing phases, not a run directory)."""


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"a.b.c": value} of nested mappings (lists are values)."""
    if not isinstance(tree, dict):
        return {prefix: tree}
    out: dict[str, Any] = {}
    for key, value in tree.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            out.update(flatten(value, path))
        else:
            out[path] = value
    return out


# Settings added after run directories were first written: a stored
# fingerprint without one of them was made with its default.
ADDED_SETTINGS = {"train.jit_compile": False, "train.precision": "float32",
                  "train.monitor": "auc"}


def _absent(key: str) -> Any:
    for suffix, default in ADDED_SETTINGS.items():
        if key == suffix or key.endswith("." + suffix):
            return default
    return "<absent>"


def differences(stored: dict[str, Any], now: dict[str, Any],
                ignore: tuple[str, ...] = ()) -> list[str]:
    """Lines "key: stored X, now Y" for the keys whose values differ (a
    key ending with one of `ignore` is skipped; a key of `ADDED_SETTINGS`
    missing from `stored` counts as its default)."""
    a, b = flatten(_plain(stored)), flatten(_plain(now))
    lines = []
    for key in sorted(set(a) | set(b)):
        if any(key.endswith(i) for i in ignore):
            continue
        old, new = a.get(key, _absent(key)), b.get(key, _absent(key))
        if old != new:
            lines.append(f"{key}: stored {old!r}, now {new!r}")
    return lines


def _plain(value: Any) -> Any:
    """YAML/JSON-comparable form (tuples as lists)."""
    return json.loads(json.dumps(value, default=list))


class RunDir(os.PathLike):
    """A run directory (see the module docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = os.path.abspath(os.fspath(path))

    def __fspath__(self) -> str:
        return self.path

    def __str__(self) -> str:
        return self.path

    # -- layout -----------------------------------------------------------
    @property
    def config_path(self) -> str:
        return os.path.join(self.path, "config.yaml")

    @property
    def metrics_path(self) -> str:
        return os.path.join(self.path, "metrics.json")

    def phase_dir(self, phase: str) -> str:
        if phase not in PHASES:
            raise ValueError(f"Unknown phase {phase!r}. Phases: "
                             f"{list(PHASES)}")
        return os.path.join(self.path, phase)

    def weights_prefix(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), "weights", "model")

    def backup_dir(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), "backup")

    def tb_dir(self, phase: str) -> str:
        return os.path.join(self.path, "tb", phase)

    def _done_path(self, phase: str) -> str:
        return os.path.join(self.phase_dir(phase), "done.json")

    def _backup_fingerprint_path(self, phase: str) -> str:
        return os.path.join(self.backup_dir(phase), "fingerprint.json")

    # -- queries ----------------------------------------------------------
    @staticmethod
    def is_run_dir(path: str | os.PathLike) -> bool:
        return os.path.exists(os.path.join(os.fspath(path), "config.yaml"))

    @classmethod
    def open(cls, path: str | os.PathLike) -> RunDir:
        """An existing run directory (error naming it otherwise)."""
        run = path if isinstance(path, RunDir) else cls(path)
        if not cls.is_run_dir(run.path):
            raise FileNotFoundError(
                f"{run.config_path} not found: {run.path!r} is not a run "
                "directory written by `python -m tfdsmlp train` or `run`.")
        return run

    def is_done(self, phase: str) -> bool:
        return os.path.exists(self._done_path(phase))

    def done_phases(self) -> list[str]:
        return [p for p in PHASES if self.is_done(p)]

    def read_done(self, phase: str) -> dict[str, Any]:
        """{"fingerprint", "settings", "info"} of a finished phase."""
        return _read_json(self._done_path(phase))

    def has_weights(self, phase: str) -> bool:
        return (self.is_done(phase)
                and os.path.exists(self.weights_prefix(phase) + ".index"))

    def read_config(self) -> dict[str, Any]:
        with open(self.config_path, encoding="utf-8") as f:
            try:
                data = yaml.safe_load(f) or {}
            except yaml.YAMLError as e:
                raise RunDirError(f"{self.config_path} is not valid YAML: "
                                  f"{e}") from None
        if not isinstance(data, dict):
            raise RunDirError(f"{self.config_path}: the top level should be "
                              "a mapping")
        return data

    def read_metrics(self) -> dict[str, Any]:
        if not os.path.exists(self.metrics_path):
            raise FileNotFoundError(
                f"{self.metrics_path} not found: the run in {self.path} has "
                "not finished; rerun its command to resume it.")
        return _read_json(self.metrics_path)

    # -- fingerprints ------------------------------------------------------
    def check_phases(self, fingerprints: dict[str, dict[str, Any]]) -> None:
        """Raises `RunDirError` (before any work) when a finished phase, or
        the backup of an unfinished one, was made with another fingerprint
        than `fingerprints[phase]`."""
        problems = []
        for phase, fp in fingerprints.items():
            if self.is_done(phase):
                diff = differences(self.read_done(phase)["fingerprint"], fp,
                                   ignore=NON_RESULT_SETTINGS)
                kind = "finished phase"
            elif os.path.exists(self._backup_fingerprint_path(phase)):
                diff = differences(
                    _read_json(self._backup_fingerprint_path(phase)), fp,
                    ignore=RESUMABLE_CHANGES + NON_RESULT_SETTINGS)
                kind = "interrupted phase (its backup)"
            else:
                continue
            if diff:
                problems.append((phase, kind, diff))
        if not problems:
            return
        first = problems[0][0]
        lines = [(f"{self.path} holds results made with other settings or "
                 "data; nothing was done and nothing was changed:")]
        for phase, kind, diff in problems:
            lines.append(f"  {kind} {phase!r}:")
            lines += [f"    {d}" for d in diff[:12]]
            if len(diff) > 12:
                lines.append(f"    ... and {len(diff) - 12} more")
        lines.append(
            f"To train again from {first!r} (removing it and the phases "
            f"after it), add `--restart-from {first}`; to keep them, rerun "
            f"with their settings ({self.config_path}); or use another "
            "--out.")
        raise RunDirError("\n".join(lines))

    def start_phase(self, phase: str, fingerprint: dict[str, Any]) -> None:
        """Records the fingerprint of a phase about to train (once)."""
        path = self._backup_fingerprint_path(phase)
        if not os.path.exists(path):
            _write_json(fingerprint, path)

    def write_done(self, phase: str, fingerprint: dict[str, Any],
                   settings: dict[str, Any], info: dict[str, Any]) -> None:
        """Commits a finished phase (its weights must be saved first) and
        removes its backup."""
        _write_json({"fingerprint": fingerprint, "settings": settings,
                     "info": info}, self._done_path(phase))
        shutil.rmtree(self.backup_dir(phase), ignore_errors=True)

    def restart_from(self, phase: str) -> list[str]:
        """Removes `phase` and the phases after it (weights, backups,
        TensorBoard logs) and metrics.json; returns what was removed."""
        removed = []
        for p in PHASES[PHASES.index(phase):]:
            for path in (self.phase_dir(p), self.tb_dir(p)):
                if os.path.exists(path):
                    shutil.rmtree(path)
                    removed.append(path)
        if os.path.exists(self.metrics_path):
            os.remove(self.metrics_path)
            removed.append(self.metrics_path)
        return removed

    def write_config(self, config: dict[str, Any]) -> None:
        os.makedirs(self.path, exist_ok=True)
        tmp = self.config_path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            yaml.safe_dump(_plain(config), f, sort_keys=False)
        os.replace(tmp, self.config_path)

    def write_metrics(self, metrics: dict[str, Any]) -> None:
        _write_json(metrics, self.metrics_path)


def trained_with(fingerprint: dict[str, Any] | None
                 ) -> dict[str, Any] | None:
    """The `train` settings that made a teacher, from its phase's
    fingerprint (done.json), followed back through `loaded_from` where its
    run loaded the teacher from another run; None for weights copied out
    of their run (no fingerprint to follow)."""
    made = fingerprint or {}
    while "train" not in made and "loaded_from" in made:  # loaded too
        made = made["loaded_from"].get("fingerprint") or {}
    return made.get("train")


def _read_json(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise RunDirError(f"{path} is not valid JSON ({e}); the file is "
                          "damaged. Remove the phase directory to train it "
                          "again.") from None


def _write_json(obj: Any, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(tmp, path)
