"""Every model test starts from a fresh Keras session."""
import pytest
import tensorflow as tf

keras = tf.keras


@pytest.fixture(autouse=True)
def _clean_keras():
    keras.backend.clear_session()
    yield
