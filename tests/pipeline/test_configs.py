"""Trainer presets and the baselines' learning rates and L2 (pipeline/configs.py): the reference tables, the
grid choices, the test preset."""
import pytest

from pipeline import configs


@pytest.mark.parametrize("dataset, model, lr, l2", [
    ("criteo", "xdeepfm", 3e-3, 3e-7),
    ("avazu", "dcn", 1e-4, 3e-6),
    ("kdd12", "dcnv2", 3e-5, 1e-7),
    ("criteo", "ipnn", 3e-3, 3e-6),
    ("avazu", "deepfm", 3e-4, 3e-6),
    ("criteo", "dnn", 1e-3, 3e-6),  # the DNN baseline takes hyperparam.md's FNN row
])
def test_presets_use_the_reference_rates_at_both_sizes(dataset, model, lr, l2):
    for size, batch in (("full", 4096), ("small", 256)):  # no learning-rate floor on the samples
        preset = configs.trainer_preset(dataset, model, size)
        assert preset.model.name == model and preset.train.batch_size == batch
        assert (preset.train.learning_rate, preset.train.l2_embedding, preset.train.l2_dense) == (lr, l2, l2)
        assert configs.lr_l2_source(dataset, model).startswith("algorithms.md §1.8")


def test_presets_are_three_d_wide_blocks_and_the_test_preset_is_tiny():
    from trainer.models.dnn import D_WIDE
    small = configs.trainer_preset("avazu", "dcn", "small")
    assert small.model.hidden_units == (D_WIDE,) * 3 and small.model.embedding_dim == 40
    assert configs.trainer_preset("kdd12", "dnn", "full").model.embedding_dim == 16
    test = configs.trainer_preset("kdd12", "ipnn", "test")
    assert (test.model.embedding_dim, test.model.hidden_units, test.train.learning_rate, test.train.l2_dense) == (
        4, (16,), 3e-3, 0.0)


def test_grid_models_and_frappe_take_the_grid_choice():
    assert configs.learning_rate_and_l2("criteo", "lr") == configs.GRID_CHOICE_LR_L2["lr"]["criteo"]
    for model in configs.BASELINES:  # hyperparam.md has no Frappe column: every baseline is chosen on the grid
        lr, l2 = configs.learning_rate_and_l2("frappe", model)
        assert lr in configs.BASELINE_GRID["learning_rate"] and l2 in configs.BASELINE_GRID["l2"]
        assert configs.lr_l2_source("frappe", model).startswith("grid choice")
    for model in ("lr", "fm"):
        for dataset in ("criteo", "avazu", "kdd12"):
            lr, l2 = configs.learning_rate_and_l2(dataset, model)
            assert lr in configs.BASELINE_GRID["learning_rate"] and l2 in configs.BASELINE_GRID["l2"]
    # Models of neither table (OptFusion, ResFusion families) take DeepFM's values, Frappe's included.
    assert configs.learning_rate_and_l2("kdd12", "optfusion-hard") == (3e-5, 1e-5)
    assert configs.learning_rate_and_l2("frappe", "resfusion") == configs.learning_rate_and_l2("frappe", "deepfm")
    assert configs.learning_rate_and_l2("tfrecord", "dcn") == (2e-3, 3e-6)  # unknown TFRecords: Criteo's column


def test_baseline_grid_spans_lr_and_l2():
    grid = configs.baseline_grid("criteo", "fm", "small")
    assert [(c.train.learning_rate, c.train.l2_embedding, c.train.l2_dense) for c in grid] == [
        (lr, l2, l2) for lr in (3e-4, 1e-3, 3e-3) for l2 in (0.0, 1e-6)]
    assert {c.model.name for c in grid} == {"fm"} and {c.train.batch_size for c in grid} == {256}
