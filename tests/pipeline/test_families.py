"""Model names -> pipeline families (pipeline/families.py): every name has one, a typo lists the choices."""
import pytest

from pipeline import families, keras_steps, optfusion_steps, resfusion_steps
from trainer.config import TrainConfig


def test_plain_keras_models_use_the_default_family():
    assert families.get_family("deepfm").steps is keras_steps
    assert keras_steps.default_options("criteo", "small", TrainConfig()) is None


def test_every_model_name_has_one_family_and_a_typo_lists_the_choices():
    assert {name for name, f in families.FAMILIES.items() if f.steps is optfusion_steps} == {
        "optfusion-hard", "optfusion-soft"}
    assert {name for name, f in families.FAMILIES.items() if f.steps is resfusion_steps} == set(
        resfusion_steps.VARIANTS)
    with pytest.raises(ValueError, match="unknown model 'dcnn'; choose one of lr, fm, dnn, deepfm, dcn, .*gbdt"):
        families.get_family("dcnn")
