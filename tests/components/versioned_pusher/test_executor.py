"""VersionedPusher's executor: hand-computed versions, retention, the stock Pusher's record, and a reader that
lists and loads versions while pushes happen."""
import json
import os
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import tensorflow as tf
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components.versioned_pusher import executor
from pipeline import configs

# A SavedModel of 32 MB, so a copy takes long enough for a reader to catch one half-written.
WEIGHTS = 8_000_000


def _saved_model(folder: str, scale: float) -> str:
    """A SavedModel whose serving_default maps x float32 [n] to scale * x, with WEIGHTS float32 weights beside."""
    module = tf.Module()
    module.scale = tf.Variable(scale)
    module.padding = tf.Variable(tf.zeros([WEIGHTS]))
    module.serve = tf.function(lambda x: {"y": module.scale * x}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, folder, signatures={"serving_default": module.serve})
    return folder


@pytest.fixture(scope="module")
def model_artifacts(tmp_path_factory):
    """Two Model artifacts (scale 1 and 2), their SavedModels in <uri>/Format-Serving as the Trainer writes them."""
    models = []
    for scale in (1.0, 2.0):
        model = standard_artifacts.Model()
        model.uri = str(tmp_path_factory.mktemp(f"model_{scale:g}"))
        _saved_model(os.path.join(model.uri, "Format-Serving"), scale)
        models.append(model)
    return models


def _push(model, base: str, tmp_path, blessed: bool = True, keep: int = 2) -> standard_artifacts.PushedModel:
    blessing = standard_artifacts.ModelBlessing()
    blessing.set_int_custom_property("blessed", int(blessed))
    pushed = standard_artifacts.PushedModel()
    pushed.uri = str(tmp_path / f"pushed_{len(os.listdir(tmp_path))}")
    destination = pusher_pb2.PushDestination(filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=base))
    executor.Executor().Do(
        {standard_component_specs.MODEL_KEY: [model], standard_component_specs.MODEL_BLESSING_KEY: [blessing]},
        {standard_component_specs.PUSHED_MODEL_KEY: [pushed]},
        {standard_component_specs.PUSH_DESTINATION_KEY: proto_utils.proto_to_json(destination),
         standard_component_specs.CUSTOM_CONFIG_KEY: json.dumps({executor.KEEP_VERSIONS_KEY: keep})})
    return pushed


def _serve(folder: str, x: list[float]) -> np.ndarray:
    return tf.saved_model.load(folder).signatures["serving_default"](x=tf.constant(x))["y"].numpy()


def _manifest(folder: str) -> dict[str, int]:
    """{path relative to folder: size in bytes} of every file below it."""
    return {os.path.relpath(os.path.join(root, name), folder): os.path.getsize(os.path.join(root, name))
            for root, _, names in os.walk(folder) for name in names}


def test_a_version_is_now_unless_the_newest_is_as_new():
    assert executor.next_version([], now=100) == 100
    assert executor.next_version([40, 70], now=100) == 100
    assert executor.next_version([100], now=100) == 101  # two pushes in one second
    assert executor.next_version([90, 250], now=120) == 251  # a clock set back never reuses a number


def test_pruning_keeps_the_newest_versions_and_leaves_other_entries(tmp_path):
    for name in ("7", "12", "100", "3", ".101.incomplete", "notes"):
        (tmp_path / name).mkdir()
    removed = executor.prune_versions(str(tmp_path), keep=2)
    assert sorted(os.path.basename(f) for f in removed) == ["3", "7"]  # by number: 12 is newer than 7
    assert sorted(os.listdir(tmp_path)) == [".101.incomplete", "100", "12", "notes"]
    with pytest.raises(ValueError, match="keep_versions must be >= 1, got 0"):
        executor.prune_versions(str(tmp_path), keep=0)


def test_blessed_models_become_new_versions_and_the_oldest_go(model_artifacts, tmp_path):
    base = str(tmp_path / "serving_model")
    records = [_push(model_artifacts[i % 2], base, tmp_path, keep=2) for i in range(3)]
    versions = [int(r.get_string_custom_property("pushed_version")) for r in records]
    assert versions == sorted(set(versions))  # strictly increasing, however fast the pushes
    assert sorted(os.listdir(base)) == [str(v) for v in versions[1:]]  # keep 2: the first version is gone
    for record, version in zip(records, versions):
        assert record.get_int_custom_property("pushed") == 1
        assert record.get_string_custom_property("pushed_destination") == os.path.join(base, str(version))
    # The newest version is the third push, model_artifacts[0] (scale 1); the one before it scale 2.
    np.testing.assert_allclose(_serve(os.path.join(base, str(versions[2])), [1.0, 3.0]), [1.0, 3.0])
    np.testing.assert_allclose(_serve(os.path.join(base, str(versions[1])), [1.0, 3.0]), [2.0, 6.0])


def test_an_unblessed_model_is_not_pushed(model_artifacts, tmp_path):
    base = str(tmp_path / "serving_model")
    first = _push(model_artifacts[0], base, tmp_path)
    refused = _push(model_artifacts[1], base, tmp_path, blessed=False)
    assert refused.get_int_custom_property("pushed") == 0
    assert os.listdir(base) == [first.get_string_custom_property("pushed_version")]


def test_the_served_model_pushed_again_makes_no_new_version(model_artifacts, tmp_path):
    """A re-run that reused a cached model and was judged against itself: the record points at the served version."""
    base = str(tmp_path / "serving_model")
    first = _push(model_artifacts[0], base, tmp_path)
    again = _push(model_artifacts[0], base, tmp_path)
    version = first.get_string_custom_property("pushed_version")
    assert os.listdir(base) == [version]
    assert (again.get_int_custom_property("pushed"), again.get_string_custom_property("pushed_version"),
            again.get_int_custom_property(executor.ALREADY_SERVED_KEY)) == (1, version, 1)
    other = _push(model_artifacts[1], base, tmp_path)  # a different model is a new version
    assert other.get_int_custom_property(executor.ALREADY_SERVED_KEY) == 0
    assert sorted(os.listdir(base)) == sorted([version, other.get_string_custom_property("pushed_version")])
    assert not executor.same_saved_model(*(os.path.join(m.uri, "Format-Serving") for m in model_artifacts))


def test_a_version_is_never_overwritten_and_a_dead_push_leaves_nothing_behind(model_artifacts, tmp_path):
    base = tmp_path / "serving_model"
    (base / ".7.incomplete").mkdir(parents=True)  # a push that died mid-copy
    (base / ".7.incomplete" / "half").write_text("x")
    source = os.path.join(model_artifacts[0].uri, "Format-Serving")
    assert executor.push_atomically(source, str(base), 7) == str(base / "7")
    assert sorted(os.listdir(base)) == ["7"] and sorted(os.listdir(base / "7")) == sorted(os.listdir(source))
    with pytest.raises(FileExistsError, match="never overwritten"):
        executor.push_atomically(source, str(base), 7)


def _wait_until(condition: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "the reader thread stopped looking"
        time.sleep(0.01)


def test_a_reader_polling_the_folder_never_sees_a_partial_version(model_artifacts, tmp_path):
    """What TF Serving does: list the numeric versions, load the newest when it changes. While 6 pushes (and prunes)
    happen, every version the reader lists has every file of the model at its full size, and each newest version
    it loads serves the pushed model's answer."""
    base = str(tmp_path / "serving_model")
    _push(model_artifacts[1], base, tmp_path, keep=2)
    wholes = [_manifest(os.path.join(m.uri, "Format-Serving")) for m in model_artifacts]
    done, seen, failures, checks = threading.Event(), {}, [], [0]

    def read() -> None:
        while not done.is_set():
            versions = executor.version_folders(base)
            if not versions:
                failures.append("no version listed")
                continue
            newest = max(versions)
            try:
                if _manifest(versions[newest]) not in wholes:
                    failures.append(f"{versions[newest]}: partial: {sorted(_manifest(versions[newest]))}")
                if newest not in seen:
                    seen[newest] = float(_serve(versions[newest], [1.0])[0])
                checks[0] += 1
            except (OSError, ValueError, tf.errors.OpError) as error:
                if os.path.exists(versions[newest]):  # pruned between listing and reading is fine
                    failures.append(f"{versions[newest]}: {type(error).__name__}: {error}"[:300])

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for i in range(6):
            # The reader's pace depends on the machine's load (a loaded CI runner managed 5 looks in 6 pushes), so
            # the writer waits for 3 looks between pushes: the reader provably reads every version, at any speed.
            _wait_until(lambda target=checks[0] + 3: checks[0] >= target or bool(failures))
            _push(model_artifacts[i % 2], base, tmp_path, keep=2)
    finally:
        done.set()
        reader.join()
    assert not failures, failures[:3]
    assert checks[0] >= 18 and len(seen) >= 2 and set(seen.values()) <= {1.0, 2.0}  # it did look, and load
    assert len(os.listdir(base)) == 2


def test_the_pipeline_config_rejects_a_retention_below_one():
    with pytest.raises(ValueError, match="keep_versions must be >= 1"):
        configs.PushConfig(keep_versions=0)
