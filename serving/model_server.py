"""The model server: the pushed SavedModel on KServe's Python model server, answering TF Serving's REST API.

    python -m serving --model_name ctr --model_base_path tfx_output/serving_model --rest_api_port 8501

    POST /v1/models/ctr:predict   {"instances": [...]} -> {"predictions": [[p], ...]}   (serving/instances.py)
    GET  /v1/models/ctr           {"name": "ctr", "ready": true}
    GET  /v2/health/ready, /v2/models/ctr/ready, ...                                   (KServe's V2 endpoints)

`CtrModel` serves the highest numeric version under the base path (the Pusher's `serving_model/<version>/`; hidden
`.<version>.incomplete` folders are not versions) and polls the folder: a newer version is loaded beside the one
serving and then swapped in, so no request fails or mixes versions during a switch. Client errors are HTTP 400
(KServe's InvalidInput) with {"error": "..."} naming the instance and field; an unknown model is 404.
"""
from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from typing import Any, Mapping

import kserve
import numpy as np
import tensorflow as tf
from kserve.errors import InvalidInput

from serving import instances
from serving.batch_score import version_folders
from serving.feature_spec import FeatureSpec, signature_feature_spec

OUTPUT_KEY = "probability"  # trainer.export.OUTPUT_KEY (serving/ reads SavedModels, it does not import trainer/)


@dataclasses.dataclass(frozen=True)
class ServedVersion:
    """One loaded model version.

    Attributes:
        version: its number (the folder name).
        path: its folder.
        signature: its `serving_default` (examples: string [batch] -> probability: float32 [batch, 1]).
        spec: the raw features it reads (serving.feature_spec); empty when it parses no tf.Example itself.
    """

    version: int
    path: str
    signature: Any
    spec: Mapping[str, FeatureSpec]

    def score(self, serialized: list[bytes]) -> np.ndarray:
        """Probabilities float32 [n] of n serialized raw tf.Examples."""
        return self.signature(examples=tf.constant(serialized))[OUTPUT_KEY].numpy()[:, 0]


def load_version(version: int, path: str) -> ServedVersion:
    """Loads a version's SavedModel and reads its raw features."""
    # Registers the TF-DF ops that GBDT and ResFusion SavedModels hold (without them: "Op type not registered").
    import tensorflow_decision_forests  # noqa: F401

    signature = tf.saved_model.load(path).signatures[instances.SERVING_SIGNATURE]
    try:
        spec = signature_feature_spec(signature)
    except ValueError as error:
        logging.warning("version %d serves b64 tf.Examples only: %s", version, error)
        spec = {}
    return ServedVersion(version, path, signature, spec)


class CtrModel(kserve.Model):
    """A CTR model of the pipeline, served by KServe (module docstring).

    Args:
        name: the model name of the URLs (`--model_name`).
        base_path: the folder of numbered versions (`--model_base_path`).
        max_batch_size: the most instances one request may hold (more: 400).
        poll_seconds: how often the folder is checked for a newer version (`--file_system_poll_wait_seconds`;
            0: never).
    """

    def __init__(self, name: str, base_path: str, max_batch_size: int = instances.DEFAULT_MAX_BATCH_SIZE,
                 poll_seconds: float = 1.0):
        super().__init__(name)
        self.base_path, self.max_batch_size, self.poll_seconds = base_path, max_batch_size, poll_seconds
        self.served: ServedVersion | None = None
        self._stop = threading.Event()
        self._poller: threading.Thread | None = None

    def load(self) -> bool:
        """Loads the highest version and starts polling for newer ones.

        Raises:
            FileNotFoundError: no numbered version under the base path.
        """
        if not self.refresh():
            raise FileNotFoundError(f"no model version (a numbered folder with a SavedModel) under {self.base_path}: "
                                    "run the pipeline first (make run), or point --model_base_path at its "
                                    "serving_model folder")
        self.ready = True
        if self.poll_seconds > 0 and self._poller is None:
            self._poller = threading.Thread(target=self._poll, name=f"{self.name}-version-poller", daemon=True)
            self._poller.start()
        return self.ready

    def refresh(self) -> bool:
        """Loads and swaps in the highest version when it is newer than the one served; True when one is served.
        A version that fails to load is logged and retried at the next poll; the served one stays."""
        versions = version_folders(self.base_path)
        if not versions:
            return self.served is not None
        newest = max(versions)
        if self.served is not None and newest <= self.served.version:
            return True
        try:
            loaded = load_version(newest, versions[newest])
        except Exception as error:  # a version being deleted, a broken export: keep serving what works
            logging.error("model %s: version %d at %s did not load (%s); still serving %s", self.name, newest,
                          versions[newest], error, self.served.version if self.served else "nothing")
            return self.served is not None
        previous, self.served = self.served, loaded  # one reference swap: a request uses one version throughout
        logging.info("model %s: serving version %d from %s (was %s)", self.name, loaded.version, loaded.path,
                     previous.version if previous else "none")
        return True

    def _poll(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            self.refresh()

    def stop(self) -> None:
        """Stops polling (KServe calls it on shutdown)."""
        self._stop.set()

    async def predict(self, payload: Any, headers: dict[str, str] | None = None) -> dict[str, Any]:
        """TF Serving's REST predict: {"instances": [...]} -> {"predictions": [[probability], ...]}.

        Raises:
            InvalidInput: a request the model cannot score (HTTP 400, the message names the instance and field).
        """
        del headers
        if isinstance(payload, kserve.InferRequest):
            raise InvalidInput("V2 inference is not served: POST TF Serving's {\"instances\": [...]} to "
                               f"/v1/models/{self.name}:predict (the V2 health and metadata endpoints work)")
        served = self.served
        if served is None:
            raise kserve.errors.ModelNotReady(self.name)
        try:
            serialized = instances.examples_of(instances.parse_body(payload), served.spec, self.max_batch_size)
        except instances.RequestError as error:
            raise InvalidInput(str(error)) from None
        # TensorFlow releases the GIL: scoring in a thread keeps the event loop serving other requests.
        probabilities = await asyncio.get_running_loop().run_in_executor(None, served.score, serialized)
        return {"predictions": [[float(p)] for p in probabilities]}
