"""Model code: Keras layers, CTR models, the TFX run_fn and the serving export."""
import os

# tf-keras (Keras 2) is the only Keras that TF Transform, TF-DF and keras-tuner 1.3.5 accept on TF 2.16.
os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
