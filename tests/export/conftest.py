"""Session fixtures of the export tests: one tiny synthetic dataset (with
vocabulary files), one real tiny DS-MLP run on it (GDCN teacher) and its
exports (DS-MLP and teacher). Everything is small enough for 2 shared cores.

pytest imports this file before the test modules of the directory, so
`import tfdsmlp` below runs before any of them imports TensorFlow (Keras 2
must be selected first); the test modules need not repeat it.
"""

from __future__ import annotations

import tfdsmlp  # noqa: F401  (Keras 2 before TensorFlow)

import pytest

TINY_RUN = [
    "teacher.params.hidden_units=[16]", "teacher.params.num_cross_layers=1",
    "student.params.main_hidden_units=[16]",
    "student.params.parallel_hidden_units=[8]",
] + [f"{phase}.train.{key}={value}"
     for phase in ("teacher", "distill", "align")
     for key, value in (("epochs", 1), ("batch_size", 128),
                        ("shuffle_buffer", 1000),
                        # one epoch on 400 random rows need not beat
                        # chance: these tests check serving, not learning
                        ("check_learned", "false"))]


@pytest.fixture(scope="session")
def export_data(tmp_path_factory) -> str:
    """write_synthetic: c0..c5 (vocab <= 40 tokens) + x0, x1; 400 train,
    64 valid, 64 test rows (the test split has OOV and missing values)."""
    from data_tools.synth import write_synthetic

    out = str(tmp_path_factory.mktemp("export") / "data")
    write_synthetic(out, num_rows=400, seed=3, num_categorical=6,
                    num_numeric=2, vocab_size=40, valid_rows=64,
                    test_rows=64)
    return out


@pytest.fixture(scope="session")
def export_run_dir(export_data, tmp_path_factory) -> str:
    from tfdsmlp.training.pipeline import run_dsmlp
    from tfdsmlp.training.presets import build_run_config

    out = str(tmp_path_factory.mktemp("export_run"))
    cfg = build_run_config("synthetic", "gdcn", overrides=TINY_RUN)
    run_dsmlp(export_data, cfg, out, strategy="default", verbose=0)
    return out


@pytest.fixture(scope="session")
def exported(export_run_dir, tmp_path_factory) -> dict[str, str]:
    """{"base": saved_models dir, "dsmlp": version dir, "teacher": ...}."""
    from tfdsmlp.export import export_run

    base = str(tmp_path_factory.mktemp("saved_models"))
    return {"base": base,
            "dsmlp": export_run(export_run_dir, "dsmlp", "dsmlp",
                                base_dir=base),
            "teacher": export_run(export_run_dir, "dsmlp_teacher", "teacher",
                                  base_dir=base)}


@pytest.fixture(scope="session")
def servable(exported):
    from tfdsmlp.servecheck.emulator import Servable

    return Servable(exported["dsmlp"])


@pytest.fixture(scope="session")
def teacher_servable(exported):
    from tfdsmlp.servecheck.emulator import Servable

    return Servable(exported["teacher"])


@pytest.fixture(scope="session")
def test_rows(export_data):
    from tfdsmlp.servecheck.raw_rows import read_raw_rows

    return read_raw_rows(export_data, "test")


@pytest.fixture(scope="session")
def reference(export_run_dir, test_rows):
    """{"dsmlp": {probability, logit}, "teacher": {...}} of the in-process
    models on the converter's ids of the test rows."""
    from tfdsmlp.export.run_models import load_run_model
    from tfdsmlp.servecheck.check import reference_outputs

    out = {}
    for phase in ("dsmlp", "teacher"):
        model = load_run_model(export_run_dir, phase)[0]
        out[phase] = reference_outputs(model, test_rows)
    return out

