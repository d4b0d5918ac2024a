"""benchmarks/gbdt_vs_lightgbm.py: the choice by validation AUC, the rendering, the folder check, a LightGBM fit."""
import pytest

from benchmarks import gbdt_vs_lightgbm as bench


def _fit(library, setting, validation_auc, test_auc, seconds=1.0):
    return bench.Fit(library, setting, trees=10, fit_seconds=seconds, validation_auc=validation_auc,
                     test_auc=test_auc, test_logloss=0.3)


def test_the_setting_is_chosen_by_validation_auc_never_by_test_auc():
    fits = [_fit("LightGBM", "a", 0.90, 0.95), _fit("LightGBM", "b", 0.91, 0.93), _fit("TF-DF", "c", 0.80, 0.99)]
    assert bench.best_by_validation(fits, "LightGBM").setting == "b"
    assert bench.best_by_validation(fits, "TF-DF").setting == "c"
    assert bench.best_by_validation(fits, "XGBoost") is None


def test_render_gives_time_ratios_to_the_first_lightgbm_fit_and_the_chosen_gap():
    fits = [_fit("LightGBM", "default", 0.90, 0.960, seconds=2.0), _fit("LightGBM", "slow", 0.91, 0.962, 4.0),
            _fit("TF-DF", "project default", 0.89, 0.930, seconds=30.0)]
    text = "\n".join(bench.render("frappe", {"train": 8, "validation": 1, "test": 1}, fits, "cmd"))
    assert "| LightGBM | slow | 10 | 4.0 | 2.00× | 0.9100 | 0.9620 | 0.3000 |" in text
    assert "| TF-DF | project default | 10 | 30.0 | 15.00× |" in text
    # chosen: LightGBM "slow" (validation .91) and the only TF-DF fit; .930 - .962 = -.032
    assert 'TF-DF "project default" test AUC 0.9300, LightGBM "slow" 0.9620: TF-DF -0.0320' in text
    assert "≈ 0.965" in text


def test_a_folder_without_a_split_is_named(tmp_path):
    (tmp_path / "train_0000.tfrecord").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=r"no validation\*\.tfrecord\* file"):
        bench.split_files(str(tmp_path))


def test_lightgbm_learns_the_planted_effects_of_a_generated_folder(tmp_path):
    from benchmarks.quality_table import make_quick_tfrecords
    files = bench.split_files(make_quick_tfrecords(str(tmp_path / "quick")))
    data = {split: bench.read_ids(files[split]) for split in bench.SPLITS}
    assert data["train"][0].shape == (3000, 6) and data["test"][1].shape == (500,)
    fit = bench.fit_lightgbm(data, "default", {}, seed=1)
    # per-field effects of sd 1 on 6 fields: far above chance (a constant scores 0.5)
    assert fit.trees >= 1 and fit.test_auc > 0.75 and fit.validation_auc > 0.75
