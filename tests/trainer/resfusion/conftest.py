"""The fitted ResFusion stages shared by test_residual.py, test_export.py and test_comparators.py.

They read the GbdtResidual runs of tests.resfusion_data, shared with tests/components/gbdt_residual/
test_executor.py (one xdist group, tests/conftest.py). The fixtures are session-scoped so that the three files
fit them once (they were module-scoped when the three files were one). The deep stages read ids from a hashing
encoder (raw rows) or the `feature` ids themselves (TFRecords) here, not from a Transform graph, to keep the
tests fast; the pipeline's Transform-graph encoder is exercised by tests/e2e/test_resfusion_pipeline.py.
"""
import pytest
import tensorflow as tf

from tests import resfusion_data
from tests.trainer.resfusion.helpers import SPEC, TINY_TRAINER, _options, _stage_logits
from trainer.resfusion import comparators, export, gbdt, residual
from transform import features


class HashIdEncoder(residual.IdEncoder):
    """ids = field offset + hash bucket of the raw value (a stand-in for the Transform graph)."""

    def __init__(self, spec: features.DatasetSpec, buckets: int = 32):
        self.spec, self.buckets = spec, buckets
        self.num_fields = len(spec.raw_fields)
        self.table_size = buckets * self.num_fields

    def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
        inputs = gbdt.GbdtInputs(self.spec).parse(serialized)
        columns = []
        for i, field in enumerate(self.spec.raw_fields):
            value = inputs[field]
            tokens = tf.strings.as_string(value) if value.dtype != tf.string else value
            columns.append(tf.strings.to_hash_bucket_fast(tokens, self.buckets) + i * self.buckets)
        return tf.stack(columns, axis=1)


class PrebuiltIdEncoder(residual.IdEncoder):
    """OptFusion TFRecords: the ids of `feature` as they are (what Transform's prebuilt_ids keeps in range)."""

    def __init__(self, num_fields: int, largest_id: int):
        self.num_fields, self.table_size = num_fields, largest_id + 1
        self._spec = {features.FEATURE_KEY: tf.io.FixedLenFeature([num_fields], tf.int64)}

    def __call__(self, serialized: tf.Tensor) -> tf.Tensor:
        return tf.io.parse_example(serialized, self._spec)[features.FEATURE_KEY]


@pytest.fixture(scope="session")
def layouts(tmp_path_factory):
    """Per layout ("criteo": raw fields, "tfrecord": OptFusion ids): (GbdtResidual output, encoder, {split: rows})."""
    out = {}
    for layout in resfusion_data.LAYOUTS:
        produced = resfusion_data.shared_gbdt_residual(layout)
        inputs = gbdt.GbdtModel.load(produced.full_model_dir).inputs
        if layout == "tfrecord":
            encoder = PrebuiltIdEncoder(resfusion_data.TFRECORD_FIELDS, resfusion_data.largest_id(produced))
        else:
            encoder = HashIdEncoder(SPEC)
        cache = str(tmp_path_factory.mktemp(f"ids_cache_{layout}"))
        rows = {}
        for name in resfusion_data.SPLIT_ROWS[layout]:
            rows[name] = residual.SplitRows(name, produced.split_files(name), inputs, TINY_TRAINER.train.batch_size)
            rows[name].cache_ids(encoder, cache)
        out[layout] = (produced, encoder, rows)
    return out


@pytest.fixture(scope="session")
def k3(layouts, tmp_path_factory):
    """GBDTRes+NN with K = 3 fitted once on raw Criteo-layout rows; the prefixes K = 1, 2, 3 exported from its
    stages. Returns (stages, {K: export_dir})."""
    produced, encoder, rows = layouts["criteo"]
    ctx = residual.FitContext(rows["train"].inputs, _options(3), TINY_TRAINER, encoder)
    stages = residual.fit_stages(ctx, rows["train"], rows["eval"], gbdt.GbdtModel.load(produced.full_model_dir))
    exports = {}
    for rounds in (1, 2, 3):
        exports[rounds] = str(tmp_path_factory.mktemp(f"export_k{rounds}"))
        export.export_model(stages[:rounds + 1], encoder, rows["train"].inputs, exports[rounds])
    return stages, exports


@pytest.fixture(scope="session")
def tfrecord_fitted(layouts, tmp_path_factory):
    """On OptFusion TFRecord rows: GBDTRes+NN (K = 1, not exported: the comparators export the same GBDT on
    ids), NNres+GBDT and every Table 2 comparator, exported. {name: (stages or None, record, export_dir or None)}."""
    produced, encoder, rows = layouts["tfrecord"]
    inputs = rows["train"].inputs
    out = {}
    for name, options in (("resfusion", _options(1)), ("nnres-gbdt", _options(1, first_stage="nn"))):
        first = gbdt.GbdtModel.load(produced.full_model_dir) if options.first_stage == "gbdt" else None
        stages = residual.fit_stages(residual.FitContext(inputs, options, TINY_TRAINER, encoder),
                                     rows["train"], rows["eval"], first)
        export_dir = None
        if name == "nnres-gbdt":
            export_dir = str(tmp_path_factory.mktemp(f"tfrecord_{name}"))
            export.export_model(stages, encoder, inputs, export_dir)
        out[name] = (stages, stages[-1].record, export_dir)
    ctx = residual.FitContext(inputs, _options(0), TINY_TRAINER, encoder)
    for variant in comparators.COMPARATORS:
        model, record = comparators.fit_comparator(variant, ctx, rows["train"], rows["eval"],
                                                   gbdt.GbdtModel.load(produced.full_model_dir))
        export_dir = str(tmp_path_factory.mktemp(variant.replace("+", "_plus_")))
        export.save_model(model, encoder, inputs, export_dir)
        out[variant] = (None, record, export_dir)
    return out


@pytest.fixture(scope="session")
def k3_test_logits(k3, layouts):
    """Each K = 3 stage's logits on the raw test rows, computed stage by stage: float32 [n] per stage."""
    test = layouts["criteo"][2]["test"]
    return [_stage_logits(test, stage) for stage in k3[0]]
