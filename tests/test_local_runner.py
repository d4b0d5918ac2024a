"""local_runner: the settings layout of OptFusion TFRecords, the training seed flag, and the OptFusion and
ResFusion flags."""
import dataclasses
import json
import logging

import pytest

import local_runner
from pipeline import configs, optfusion_steps
from transform.layouts import avazu, criteo


def _tfrecord_folder(tmp_path, meta: dict | None):
    for split in ("train", "validation", "test"):
        (tmp_path / f"{split}_0000.tfrecord").write_bytes(b"")
    if meta is not None:
        (tmp_path / "meta.json").write_text(json.dumps(meta))
    return str(tmp_path)


def _config(argv):
    return local_runner.build_config(local_runner.parse_args(argv))


def test_a_tfrecord_folder_takes_the_settings_of_the_dataset_its_meta_json_names(tmp_path):
    folder = _tfrecord_folder(tmp_path, {"dataset": "frappe", "fields": 10})
    assert local_runner.settings_layout("tfrecord", folder) == "frappe"
    config = _config(["--dataset", "tfrecord", "--data", folder, "--model", "optfusion-hard",
                      "--output-dir", str(tmp_path / "out")])
    # Frappe runs with Avazu's reference settings (shared/data/README.md), not Criteo's.
    assert config.model_options == optfusion_steps.preset("frappe", "small")
    assert config.model_options.search.arch_lr == avazu.REFERENCE.optfusion.arch_lr != \
        criteo.REFERENCE.optfusion.arch_lr
    assert config.trainer == configs.trainer_preset("frappe", "optfusion-hard", "small")
    assert config.dataset.name == "tfrecord"  # the layout changes settings only, not how the data are read


def test_layout_flag_wins_over_meta_json_and_criteo_is_the_fallback(tmp_path):
    folder = _tfrecord_folder(tmp_path, {"dataset": "frappe"})
    assert local_runner.settings_layout("tfrecord", folder, "avazu") == "avazu"
    (tmp_path / "bare").mkdir()
    bare = _tfrecord_folder(tmp_path / "bare", None)
    assert local_runner.settings_layout("tfrecord", bare) == "tfrecord"
    assert configs.reference("tfrecord") is criteo.REFERENCE
    assert local_runner.settings_layout("avazu", folder) == "avazu"


def test_unknown_layouts_fail_with_what_to_do(tmp_path):
    folder = _tfrecord_folder(tmp_path, {"dataset": "movielens"})
    with pytest.raises(SystemExit, match="movielens.*--layout"):
        local_runner.settings_layout("tfrecord", folder)
    with pytest.raises(SystemExit, match="only for --dataset tfrecord"):
        local_runner.settings_layout("criteo", folder, "avazu")


@pytest.mark.parametrize("model", ["deepfm", "optfusion-hard", "resfusion"])
def test_seed_sets_every_training_seed(tmp_path, model):
    config = _config(["--model", model, "--seed", "7", "--preset", "test", "--output-dir", str(tmp_path),
                      "--rows", "50"])
    assert config.trainer.train.seed == 7
    seeds = _values_of(config.model_options, "seed")  # every seed the family's settings hold, nested ones too
    assert seeds == ([] if model == "deepfm" else [7] * len(seeds)) and (model == "deepfm" or seeds)
    default = _config(["--model", model, "--preset", "test", "--output-dir", str(tmp_path), "--rows", "50"])
    assert default.trainer.train.seed == 2024  # the reference's seed


def _values_of(settings, name: str) -> list:
    """Every value of a field called `name` in a (nested) settings dataclass."""
    if not dataclasses.is_dataclass(settings):
        return []
    return [v for f in dataclasses.fields(settings) for v in (
        [getattr(settings, f.name)] if f.name == name else _values_of(getattr(settings, f.name), name))]


def test_a_mistyped_model_fails_before_anything_runs_and_lists_the_choices(capsys):
    with pytest.raises(SystemExit):
        local_runner.parse_args(["--model", "dcnn"])
    assert "invalid choice: 'dcnn' (choose from 'lr', 'fm', 'dnn', 'deepfm'" in capsys.readouterr().err


def test_runner_flags_set_precision_xla_l2_and_inheritance():
    import local_runner
    args = local_runner.parse_args(["--model", "optfusion-soft", "--preset", "test", "--precision", "mixed_bfloat16",
                                    "--jit-compile", "--l2-mode", "lazy", "--from-scratch"])
    options = local_runner.family_options(args)
    run = options.search.run
    assert (run.precision, run.jit_compile, run.l2_mode, options.inherit_weights) == (
        "mixed_bfloat16", True, "lazy", False)
    assert options.retrain("soft").run == run and not options.retrain("soft").inherit_weights
    assert local_runner.family_options(local_runner.parse_args(["--model", "optfusion-hard"])) == (
        optfusion_steps.preset("criteo", "small"))  # no flag: the preset untouched
    with pytest.raises(SystemExit, match="takes no --precision, --from-scratch"):
        local_runner.family_options(local_runner.parse_args(["--model", "dcn", "--precision", "float32",
                                                             "--from-scratch"]))


def test_runner_flags_pick_the_residual_model_and_k():
    import local_runner
    args = local_runner.parse_args(["--model", "resfusion", "--preset", "test", "--rounds", "3",
                                    "--residual-model", "deepfm"])
    options = local_runner.family_options(args)
    assert options.rounds == 3 and options.residual_model == "deepfm"
    with pytest.raises(SystemExit, match="takes no --rounds"):
        local_runner.family_options(local_runner.parse_args(["--model", "deepfm", "--rounds", "3"]))


def test_an_optfusion_tfrecord_folder_needs_train_and_validation_and_may_lack_test(tmp_path, caplog):
    for name in ("train_0000.tfrecord", "validation_0000.tfrecord"):
        (tmp_path / name).write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert local_runner.tfrecord_splits(str(tmp_path)) == ("train", "eval")
    assert "has no test*.tfrecord* file" in caplog.text and "no test split to report" in caplog.text
    (tmp_path / "test_0000.tfrecord").write_bytes(b"")
    assert local_runner.tfrecord_splits(str(tmp_path)) == ("train", "eval", "test")
    (tmp_path / "validation_0000.tfrecord").unlink()
    with pytest.raises(SystemExit, match=r"has no validation\*.tfrecord\* file: an OptFusion TFRecord folder holds"):
        local_runner.tfrecord_splits(str(tmp_path))


def test_continuous_training_flags(tmp_path):
    config = _config(["--data", str(tmp_path), "--file-pattern", "day-{SPAN}/*.tsv", "--span-window", "3",
                      "--warm-start"])
    assert (config.dataset.input_base, config.dataset.file_pattern) == (str(tmp_path), "day-{SPAN}/*.tsv")
    assert config.dataset.span_window == 3 and config.trainer.train.warm_start
    assert not _config(["--data", str(tmp_path)]).trainer.train.warm_start
    log = tmp_path / "log.tsv"
    log.write_text("")
    with pytest.raises(SystemExit, match="--file-pattern needs --data to be a folder"):
        _config(["--data", str(log), "--file-pattern", "day-{SPAN}/*"])
    with pytest.raises(SystemExit, match="--file-pattern needs --data"):
        _config(["--file-pattern", "day-{SPAN}/*"])
    with pytest.raises(SystemExit, match="--keep-runs must be at least 1"):
        _config(["--data", str(tmp_path), "--keep-runs", "0"])
    with pytest.raises(SystemExit, match=r"a window of 2 spans needs \{SPAN\}"):
        local_runner.run(["--data", str(tmp_path), "--span-window", "2", "--output-dir", str(tmp_path / "out")])


def test_runner_flags_set_the_optfusion_residual_networks_settings():
    import local_runner
    args = local_runner.parse_args(["--model", "resfusion", "--preset", "test", "--residual-model", "optfusion-hard",
                                    "--from-scratch", "--seed", "7"])
    options = local_runner.family_options(args)
    assert options.residual_model == "optfusion-hard" and options.optfusion.inherit_weights is False
    assert options.optfusion.search.run.seed == 7


@pytest.mark.parametrize("flag, value, field, expected", [
    ("--gbdt-training-fraction", "0.25", "training_fraction", 0.25),
    ("--gbdt-max-vocab-count", "250", "max_vocab_count", 250)])
def test_a_gbdt_flag_sets_the_gbdt_stages_params_and_other_families_refuse_it(flag, value, field, expected):
    import local_runner
    options = local_runner.family_options(local_runner.parse_args(
        ["--model", "resfusion", "--preset", "test", flag, value]))
    assert getattr(options.gbdt, field) == expected
    with pytest.raises(SystemExit, match=f"takes no {flag}"):
        local_runner.family_options(local_runner.parse_args(["--model", "deepfm", flag, value]))


def test_embedding_update_flag_sets_the_optfusion_run_settings():
    import local_runner
    options = local_runner.family_options(local_runner.parse_args(
        ["--model", "optfusion-hard", "--preset", "test", "--embedding-update", "lazy"]))
    assert options.search.run.embedding_update == "lazy"
    assert options.retrain("hard").run.embedding_update == "lazy"  # the retrain runs on the search's run settings
