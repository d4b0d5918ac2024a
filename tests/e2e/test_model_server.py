"""The model server (`python -m serving`, KServe) on the model the Criteo sample's run pushed (OptFusion-Hard),
started on a free loopback port: rows of the sample's held-out test file score as the SavedModel scores them, every
client error is a 400/404 naming what is wrong while the server keeps serving, and a newly pushed version is
switched to during a stream of requests with no failed request."""
from __future__ import annotations

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
import tensorflow as tf

from serving.batch_score import read_raw_rows
from tests.helpers import REPO_ROOT
from transform.parsers import row_to_example

pytestmark = pytest.mark.e2e

MODEL = "ctr"
MAX_BATCH = 256
HELDOUT_ROWS = 300


def _post(port: int, body: bytes | dict, model: str = MODEL) -> tuple[int, dict]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}/v1/models/{model}:predict", data=data)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _heldout_rows(path: str, count: int) -> list[dict]:
    return read_raw_rows(path, "criteo", limit=count)[0]


def _signature(version_dir: str):
    import tensorflow_decision_forests  # noqa: F401
    return tf.saved_model.load(version_dir).signatures["serving_default"]


def _direct(version_dir: str, rows: list[dict]) -> np.ndarray:
    serialized = tf.constant([row_to_example(row).SerializeToString() for row in rows])
    return _signature(version_dir)(examples=serialized)["probability"].numpy()[:, 0]


@pytest.fixture(scope="module")
def server(sample_run, tmp_path_factory):
    """The server on a copy of the run's serving folder (versions are pushed into it here), polling it every 0.2 s."""
    run = sample_run("criteo")
    base = tmp_path_factory.mktemp("server") / "serving_model"
    shutil.copytree(run.serving_model_dir, base)
    port = _free_port()
    log = open(base.parent / "server.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "serving", "--model_name", MODEL, "--model_base_path", str(base),
         "--rest_api_port", str(port), "--max_batch_size", str(MAX_BATCH), "--file_system_poll_wait_seconds", "0.2"],
        cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models/{MODEL}", timeout=5) as response:
                assert json.loads(response.read()) == {"name": MODEL, "ready": True}
                break
        except (urllib.error.URLError, ConnectionError):
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log_text = (base.parent / "server.log").read_text()[-3000:]
                raise AssertionError("the server did not start:\n" + log_text) from None
            time.sleep(1)
    yield port, str(base), run
    process.terminate()
    process.wait(timeout=30)
    log.close()


def _versions(base: str) -> dict[int, str]:
    return {int(n): os.path.join(base, n) for n in os.listdir(base) if n.isdigit()}


def test_heldout_rows_score_as_the_saved_model_scores_them(server):
    port, base, run = server
    rows = _heldout_rows(run.heldout_file, HELDOUT_ROWS)
    expected = _direct(max(_versions(base).items())[1], rows)
    as_rows, as_b64 = [], []
    for start in range(0, len(rows), 100):
        batch = rows[start:start + 100]
        status, body = _post(port, {"instances": batch})
        assert status == 200, body
        as_rows += [p[0] for p in body["predictions"]]
        b64 = [{"b64": base64.b64encode(row_to_example(r).SerializeToString()).decode()} for r in batch]
        status, body = _post(port, {"instances": b64})
        assert status == 200, body
        as_b64 += [p[0] for p in body["predictions"]]
    assert any(v is None for row in rows for v in row.values())  # missing values were sent (as null)
    np.testing.assert_allclose(as_rows, expected, rtol=1e-6, atol=1e-7)
    assert as_b64 == as_rows


def test_client_errors_answer_400_or_404_naming_the_problem_and_the_server_keeps_serving(server):
    port, _, run = server
    (row,) = _heldout_rows(run.heldout_file, 1)
    cases = [
        (b'{"instances": [', 400, "not valid JSON"),
        ({"instances": [{**row, "C40": "x"}]}, 400, "instance 0: unknown feature 'C40'"),
        ({"instances": [{"I1": "abc"}]}, 400, "feature 'I1' is an integer field"),
        ({"instances": [{"C1": ["a", "b"]}]}, 400, "feature 'C1' takes one value, got 2"),
        ({"instances": [row] * (MAX_BATCH + 1)}, 400, f"{MAX_BATCH + 1} instances is over the server's limit"),
    ]
    for body, status, message in cases:
        got_status, got = _post(port, body)
        assert (got_status, set(got)) == (status, {"error"}) and message in got["error"], (body, got)
    assert _post(port, {"instances": [row]}, model="no-such-model")[0] == 404
    v2 = urllib.request.Request(f"http://127.0.0.1:{port}/v2/models/{MODEL}/infer", data=json.dumps(
        {"inputs": [{"name": "examples", "shape": [1], "datatype": "BYTES", "data": ["x"]}]}).encode(),
        headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(v2, timeout=60)
    assert refused.value.code == 400 and "V2 inference is not served" in json.loads(refused.value.read())["error"]
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/models/{MODEL}/ready", timeout=60) as ready:
        assert ready.status == 200  # KServe's V2 health endpoints
    status, body = _post(port, {"instances": [row, {"C1": "never-seen-in-training"}]})  # OOV and all-missing: valid
    assert status == 200 and len(body["predictions"]) == 2


def _push_shifted_copy(base: str) -> tuple[int, str]:
    """A new version: the served model with every scalar bias raised by 2 (so its scores differ), written beside the
    folder and renamed into place, as the Pusher does."""
    version, path = max(_versions(base).items())
    model = tf.saved_model.load(path)
    biases = [v for v in model.variables if "bias" in v.name and v.shape.num_elements() == 1]
    assert biases
    for bias in biases:
        bias.assign_add(tf.fill(bias.shape, 2.0))
    staging = os.path.join(base, f".{version + 1}.incomplete")
    tf.saved_model.save(model, staging, signatures={"serving_default": model.signatures["serving_default"]})
    final = os.path.join(base, str(version + 1))
    os.rename(staging, final)
    return version + 1, final


def test_a_new_version_is_served_without_failing_a_request(server):
    port, base, run = server
    rows = _heldout_rows(run.heldout_file, 1)
    old = float(_direct(max(_versions(base).items())[1], rows)[0])
    answers: list[tuple[int, float | None]] = []
    done = threading.Event()

    def stream() -> None:
        while not done.is_set():
            status, body = _post(port, {"instances": rows})
            answers.append((status, body["predictions"][0][0] if status == 200 else None))

    client = threading.Thread(target=stream)
    client.start()
    try:
        while len(answers) < 5:
            time.sleep(0.05)
        _, new_path = _push_shifted_copy(base)
        new = float(_direct(new_path, rows)[0])
        deadline = time.monotonic() + 120
        while not answers or answers[-1][1] is None or not np.isclose(answers[-1][1], new, rtol=1e-6):
            assert time.monotonic() < deadline, f"still serving the old version: {answers[-3:]}"
            time.sleep(0.1)
        seen = len(answers)
        while len(answers) < seen + 5:
            time.sleep(0.05)
    finally:
        done.set()
        client.join()
    assert not np.isclose(old, new)
    assert all(status == 200 for status, _ in answers), [a for a in answers if a[0] != 200][:3]
    first_new = next(i for i, (_, p) in enumerate(answers) if np.isclose(p, new, rtol=1e-6))
    assert all(np.isclose(p, old, rtol=1e-6) for _, p in answers[:first_new])  # old until the switch,
    assert all(np.isclose(p, new, rtol=1e-6) for _, p in answers[first_new:])  # then only the new one


def test_a_version_that_fails_to_load_is_not_switched_to(server):
    """Issue 13: a broken push (here: a version whose saved_model.pb is not a SavedModel) leaves the served version
    answering, and the server log says why; no request fails."""
    port, base, run = server
    rows = _heldout_rows(run.heldout_file, 1)
    version, path = max(_versions(base).items())
    served = float(_direct(path, rows)[0])
    os.makedirs(os.path.join(base, str(version + 1)))
    with open(os.path.join(base, str(version + 1), "saved_model.pb"), "wb") as f:
        f.write(b"not a SavedModel")
    log = os.path.join(os.path.dirname(base), "server.log")
    deadline = time.monotonic() + 60
    while f"version {version + 1} at" not in open(log).read():
        assert time.monotonic() < deadline, "the server never tried the broken version"
        time.sleep(0.2)
    for _ in range(5):  # polls every 0.2 s: it keeps trying, and keeps serving the old version
        status, body = _post(port, {"instances": rows})
        assert status == 200 and np.isclose(body["predictions"][0][0], served, rtol=1e-6)
        time.sleep(0.2)
    assert f"version {version + 1} at {os.path.join(base, str(version + 1))} did not load" in open(log).read()
    assert f"still serving {version}" in open(log).read()
