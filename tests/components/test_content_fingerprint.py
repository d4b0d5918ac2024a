"""The ExampleGens' input fingerprint holds the files' content (components/content_fingerprint.py): a file rewritten
in place with its size and modification time kept is re-ingested (../shared/cases/09), an unchanged one is cached."""
import logging
import os

import pytest

from components import content_fingerprint
from components.raw_log_example_gen.component import RawLogExampleGen
from pipeline import lineage
from tests import helpers

ROW = "\t".join(["{label}"] + ["1"] * 13 + ["68fd1e64"] * 26) + "\n"


def _rewrite_keeping_size_and_time(path, text: str) -> None:
    """As `rsync -t`, `cp -p` or `tar x` leave a changed file: same size, same modification time."""
    stat = os.stat(path)
    assert len(text.encode()) == stat.st_size
    path.write_text(text)
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def test_the_digest_sees_a_same_size_same_time_rewrite(tmp_path):
    path = tmp_path / "day_0.tsv"
    path.write_text(ROW.format(label=0) * 3)
    before = content_fingerprint.content_digest([str(path)])
    _rewrite_keeping_size_and_time(path, ROW.format(label=0) * 2 + ROW.format(label=1))
    assert content_fingerprint.content_digest([str(path)]) != before
    (tmp_path / "renamed.tsv").write_bytes(path.read_bytes())  # the names count too: a file moved is a change
    assert content_fingerprint.content_digest([str(tmp_path / "renamed.tsv")]) != content_fingerprint.content_digest(
        [str(path)])


def test_inputs_over_the_limit_keep_size_and_time_with_a_warning(tmp_path, caplog):
    path = tmp_path / "day_0.tsv"
    path.write_text(ROW.format(label=0))
    with caplog.at_level(logging.WARNING):
        assert content_fingerprint.content_digest([str(path)], max_bytes=10) is None
    assert "only their sizes and modification times are compared" in caplog.text


@pytest.mark.e2e
def test_a_rewritten_input_is_re_ingested_and_an_unchanged_one_is_cached(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    log = data / "day_0.tsv"
    log.write_text(ROW.format(label=0) * 20)

    def run() -> list[str]:
        gen = RawLogExampleGen(input_base=str(data), log_format="criteo", max_rejected_fraction=0.5)
        store = lineage.open_store(helpers.run_components(str(tmp_path / "run"), [gen], enable_cache=True))
        return lineage.execution_states_by_node(store)["RawLogExampleGen"]

    assert run() == ["COMPLETE"]
    assert run() == ["COMPLETE", "CACHED"]
    _rewrite_keeping_size_and_time(log, ROW.format(label=0) * 19 + ROW.format(label=1))
    assert run() == ["COMPLETE", "CACHED", "COMPLETE"]
    store = lineage.open_store(str(tmp_path / "run" / "metadata.sqlite"))
    labels = [e.features.feature["label"].int64_list.value[0] for split in ("train", "eval", "test")
              for e in helpers.read_examples(os.path.join(lineage.latest_output(store, "RawLogExampleGen", "examples")
                                                          .uri, f"Split-{split}"))]
    assert sorted(labels) == [0] * 19 + [1]  # the corrected data, not the cached old one
