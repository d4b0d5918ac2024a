"""Every layer test starts from a fresh Keras session and leaves the float32 policy behind."""
import pytest
import tensorflow as tf

keras = tf.keras


@pytest.fixture(autouse=True)
def _clean_keras():
    keras.backend.clear_session()
    yield
    keras.mixed_precision.set_global_policy("float32")
