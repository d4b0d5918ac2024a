"""The KServe InferenceService manifest starts the model server with flags it accepts, on the port it probes."""
import os

import yaml

from serving.__main__ import parse_args
from tests.helpers import REPO_ROOT


def test_the_manifest_runs_the_model_server_on_its_declared_port():
    with open(os.path.join(REPO_ROOT, "kubeflow", "inference_service.yaml")) as f:
        service = yaml.safe_load(f)
    assert (service["apiVersion"], service["kind"]) == ("serving.kserve.io/v1beta1", "InferenceService")
    (container,) = service["spec"]["predictor"]["containers"]
    assert container["command"] == ["python", "-m", "serving"]
    args = parse_args(container["args"])
    assert args.model_base_path == "/mnt/models"  # where KServe's storage initializer puts STORAGE_URI
    assert {e["name"] for e in container["env"]} == {"STORAGE_URI"}
    (port,) = container["ports"]
    assert port["containerPort"] == args.rest_api_port == container["readinessProbe"]["httpGet"]["port"]
    assert container["readinessProbe"]["httpGet"]["path"] == f"/v1/models/{args.model_name}"
