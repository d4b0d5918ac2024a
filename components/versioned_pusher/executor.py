"""VersionedPusher's executor: the stock Pusher's blessing check and MLMD record, with an atomic push and retention.

A version folder appears whole or not at all. The model is copied into a hidden folder beside the versions
(`.<version>.incomplete`: not a number, so TF Serving and serving.batch_score never list it), then renamed to
`<version>`: one rename, atomic on a POSIX filesystem. (On an object store such as GCS a rename is a copy; there a
reader should wait for `saved_model.pb`, which TF Serving does.) Versions are Unix seconds, strictly increasing: a
push in the same second as the newest version takes the next number. After a push only the newest `keep_versions`
versions stay (custom_config {"keep_versions": N}; default DEFAULT_KEEP_VERSIONS).

A blessed model that is already the newest version (a re-run that reused a cached model, judged against itself as
the champion) is not pushed again: the record points at the served version, with `already_served` 1.
"""
from __future__ import annotations

import json
import logging
import os
import time
from typing import Any, Iterable

from tfx import types
from tfx.components.pusher import executor as pusher_executor
from tfx.dsl.io import fileio
from tfx.proto import pusher_pb2
from tfx.types import artifact_utils, standard_component_specs
from tfx.utils import io_utils, proto_utils

KEEP_VERSIONS_KEY = "keep_versions"
ALREADY_SERVED_KEY = "already_served"
DEFAULT_KEEP_VERSIONS = 5
INCOMPLETE_SUFFIX = ".incomplete"


def next_version(existing: Iterable[int], now: int) -> int:
    """The version number of a new push: `now` (Unix seconds), or one past the newest existing version if that is
    not older, so versions strictly increase even for two pushes in one second."""
    return max([now, *(version + 1 for version in existing)])


def version_folders(base_directory: str) -> dict[int, str]:
    """{version: folder} of the numeric children of a serving base folder (nothing when it does not exist)."""
    if not fileio.exists(base_directory):
        return {}
    names = (name.rstrip("/") for name in fileio.listdir(base_directory))
    return {int(name): os.path.join(base_directory, name) for name in names if name.isdigit()}


def push_atomically(model_path: str, base_directory: str, version: int) -> str:
    """Copies the SavedModel folder `model_path` to `<base_directory>/<version>` through a hidden temporary
    folder and one rename; returns the version folder.

    Raises:
        FileExistsError: the version folder exists already.
    """
    final = os.path.join(base_directory, str(version))
    if fileio.exists(final):
        raise FileExistsError(f"{final} exists already: versions are never overwritten")
    temporary = os.path.join(base_directory, f".{version}{INCOMPLETE_SUFFIX}")
    if fileio.exists(temporary):  # left by a push that died mid-copy
        fileio.rmtree(temporary)
    fileio.makedirs(base_directory)
    io_utils.copy_dir(model_path, temporary)
    fileio.rename(temporary, final)
    return final


# What identifies a SavedModel's content: its fingerprint (TF >= 2.12 writes one: checksums of the graph and the
# checkpoint), else the graph and the checkpoint index themselves.
_IDENTITY_FILES = (("fingerprint.pb",), ("saved_model.pb", os.path.join("variables", "variables.index")))


def same_saved_model(first: str, second: str) -> bool:
    """Whether two SavedModel folders hold the same model (byte-equal fingerprints, or graphs and checkpoint
    indexes when either lacks a fingerprint)."""
    for names in _IDENTITY_FILES:
        paths = [(os.path.join(first, n), os.path.join(second, n)) for n in names]
        if all(fileio.exists(a) and fileio.exists(b) for a, b in paths):
            return all(_read(a) == _read(b) for a, b in paths)
    return False


def _read(path: str) -> bytes:
    with fileio.open(path, "rb") as f:
        return f.read()


def check_keep_versions(keep: int) -> int:
    """`keep` itself, checked.

    Raises:
        ValueError: keep < 1 (the version just pushed always stays).
    """
    if keep < 1:
        raise ValueError(f"keep_versions must be >= 1, got {keep}")
    return keep


def prune_versions(base_directory: str, keep: int) -> list[str]:
    """Deletes all but the newest `keep` version folders (other entries are left alone); returns what it deleted.

    Raises:
        ValueError: keep < 1 (check_keep_versions).
    """
    check_keep_versions(keep)
    versions = version_folders(base_directory)
    removed = [versions[v] for v in sorted(versions)[:-keep]]
    for folder in removed:
        fileio.rmtree(folder)
    return removed


class Executor(pusher_executor.Executor):
    """The stock Pusher (tfx.components.pusher.executor) with push_atomically and prune_versions."""

    def Do(self, input_dict: dict[str, list[types.Artifact]], output_dict: dict[str, list[types.Artifact]],
           exec_properties: dict[str, Any]) -> None:
        """Pushes the `model` input to `<base_directory>/<version>/` if `model_blessing` is blessed.

        Writes the `pushed_model` artifact (a copy of the model, as the stock Pusher archives it) with the custom
        properties `pushed` (1 or 0), `pushed_destination` and `pushed_version`, and `already_served` 1 when the
        model was the newest version already (nothing written to the serving folder).

        Raises:
            NotImplementedError: a push destination other than a filesystem.
            ValueError: keep_versions < 1.
        """
        self._log_startup(input_dict, output_dict, exec_properties)
        pushed_model = artifact_utils.get_single_instance(output_dict[standard_component_specs.PUSHED_MODEL_KEY])
        custom_config = json.loads(exec_properties.get(standard_component_specs.CUSTOM_CONFIG_KEY) or "null") or {}
        keep = check_keep_versions(int(custom_config.get(KEEP_VERSIONS_KEY, DEFAULT_KEEP_VERSIONS)))
        if not self.CheckBlessing(input_dict):
            self._MarkNotPushed(pushed_model)
            return
        destination = pusher_pb2.PushDestination()
        proto_utils.json_to_proto(exec_properties[standard_component_specs.PUSH_DESTINATION_KEY], destination)
        if destination.WhichOneof("destination") != "filesystem":
            raise NotImplementedError(f"VersionedPusher pushes to a filesystem, not {destination}")
        base_directory = destination.filesystem.base_directory
        model_path = self.GetModelPath(input_dict)
        versions = version_folders(base_directory)
        newest = max(versions, default=None)
        already_served = newest is not None and same_saved_model(model_path, versions[newest])
        if newest is not None and already_served:
            version, serving_path = newest, versions[newest]
            logging.info("%s is already served as %s: no new version", model_path, serving_path)
        else:
            version = next_version(versions, int(time.time()))
            serving_path = push_atomically(model_path, base_directory, version)
            logging.info("Pushed %s to %s; removed old versions %s", model_path, serving_path,
                         prune_versions(base_directory, keep))
        io_utils.copy_dir(model_path, pushed_model.uri)
        self._MarkPushed(pushed_model, pushed_destination=serving_path, pushed_version=str(version))
        if already_served:
            pushed_model.set_int_custom_property(ALREADY_SERVED_KEY, 1)
