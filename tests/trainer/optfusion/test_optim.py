"""OptFusion's optimisation (trainer/optfusion/optim.py): grouped Adam with coupled L2 (dense, lazy, folded into
the XLA-fused update), the train step under mixed precision, XLA and float16 loss scaling, and the mirrored
strategy on two CPU replicas."""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from tests.helpers import REPO_ROOT
from tests.trainer.optfusion.helpers import DIM, SETTINGS, TABLE, _batch, _supernet
from trainer.optfusion import network, optim

keras = tf.keras


# --- grouped Adam, coupled L2 -----------------------------------------------------------------------------------

def test_each_group_gets_its_own_adam_with_its_learning_rate():
    model, _ = _supernet()
    groups = network.variable_groups(model)
    optimizer = optim.GroupedAdam(groups, SETTINGS)
    assert optimizer.learning_rates() == pytest.approx({"emb": 1e-2, "nn": 2e-3, "arch": 3e-1})
    assert all(o.epsilon == 1e-8 for o in optimizer.optimizers.values())
    assert [v.name for v in groups["emb"]] == [model.get_layer(network.EMBEDDING_LAYER).embeddings.name]
    arch = {v.name.split("/")[0] for v in groups["arch"]}
    assert arch == {network.GATE_LAYER} | {f"fuse_{n}" for n in network.node_names()[2:]}  # β and 7 α
    assert len(groups["arch"]) == 8
    assert len(optimizer.variables) == len(model.trainable_variables)
    with pytest.raises(ValueError, match="more than one group"):
        optim.GroupedAdam({"emb": groups["emb"], "nn": groups["emb"]}, SETTINGS)


def test_one_step_moves_each_group_by_its_own_learning_rate():
    """Adam's first step moves every weight with a non-zero gradient by about lr·sign(g) (PyTorch and Keras)."""
    model, _ = _supernet()
    groups = network.variable_groups(model)
    step = optim.make_train_step(model, groups, {k: optim.GroupSettings(s.learning_rate) for k, s in SETTINGS.items()})
    before = {k: [v.numpy() for v in vs] for k, vs in groups.items()}
    features, labels = _batch()
    done, _, examples = step.run(iter(tf.data.Dataset.from_tensors((features, labels))), 4)
    assert (done, examples) == (1, 8)
    for name, variables in groups.items():
        moves = np.concatenate([np.abs(v.numpy() - b).ravel() for v, b in zip(variables, before[name])])
        lr = SETTINGS[name].learning_rate
        # |step| = lr·|g|/(|g| + eps) <= lr, = lr up to float32 rounding wherever |g| >> eps.
        assert moves.max() == pytest.approx(lr, rel=2e-3), name
        assert (moves <= lr * 1.002).all(), name
        assert np.median(moves[moves > 0]) == pytest.approx(lr, rel=2e-2), name


def _torch_adam(w, grads, lr, l2, eps=1e-8, b1=0.9, b2=0.999):
    """PyTorch's Adam (weight_decay = coupled L2), in numpy."""
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    for t, g in enumerate(grads, start=1):
        g = g + l2 * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        w = w - lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps)
    return w


@pytest.mark.parametrize("l2_mode", ["dense", "lazy"])
@pytest.mark.parametrize("sparse", [False, True])
def test_grouped_adam_is_pytorch_adam_with_coupled_l2(sparse, l2_mode):
    """Dense and sparse (densified) gradients, dense and lazy L2: PyTorch's Adam with weight_decay."""
    rng = np.random.default_rng(1)
    w0 = rng.normal(0, 1, (3, 4)).astype(np.float32)
    grads = [rng.normal(0, 1e-3, (3, 4)).astype(np.float32) for _ in range(3)]  # small: eps and L2 both matter
    if sparse:
        for g in grads:
            g[1] = 0.0  # row 1 never in the batch
    variable = tf.Variable(w0)
    optimizer = optim.GroupedAdam({"emb": [variable]}, {"emb": optim.GroupSettings(1e-2, 0.5)}, l2_mode=l2_mode)
    optimizer.build()
    for g in grads:
        gradient = (tf.IndexedSlices(tf.constant(g[[0, 2]]), tf.constant([0, 2]), tf.constant([3, 4])) if sparse
                    else tf.constant(g))
        optimizer.apply(optimizer.regularize([gradient]))
    if sparse and l2_mode == "lazy":  # row 1 gets no L2: PyTorch with weight_decay only on rows 0 and 2
        expected = _torch_adam(w0, grads, 1e-2, 0.5)
        expected[1] = _torch_adam(w0[1:2], [g[1:2] for g in grads], 1e-2, 0.0)[0]
    else:
        expected = _torch_adam(w0, grads, 1e-2, 0.5)
    np.testing.assert_allclose(variable.numpy(), expected, rtol=1e-5, atol=1e-6)


def test_coupled_l2_gradient_is_lambda_times_w():
    model, _ = _supernet()
    groups = network.variable_groups(model)
    optimizer = optim.GroupedAdam(groups, SETTINGS)
    table = groups["emb"][0]
    zero_loss_gradients = [tf.IndexedSlices(tf.zeros([2, DIM]), tf.constant([1, 4]), tf.shape(table))
                           if v is table else tf.zeros_like(v) for v in optimizer.variables]
    for variable, gradient in zip(optimizer.variables, optimizer.regularize(zero_loss_gradients)):
        group = next(k for k, vs in groups.items() if any(v is variable for v in vs))
        # The reference decays the whole embedding table: the sparse gradient becomes dense.
        np.testing.assert_allclose(tf.convert_to_tensor(gradient).numpy(), SETTINGS[group].l2 * variable.numpy(),
                                   rtol=1e-6, err_msg=variable.name)
    # A variable with no loss gradient still gets λ·w; with λ = 0 it gets nothing.
    assert optimizer.regularize([None] * len(optimizer.variables))[0] is not None
    assert optim.coupled_l2(tf.ones([2]), tf.Variable([3.0, 4.0]), 0.0).numpy().tolist() == [1.0, 1.0]


def test_lazy_l2_touches_only_the_rows_in_the_batch():
    table = tf.Variable(np.arange(12, dtype=np.float32).reshape(6, 2) + 1)
    sparse = tf.IndexedSlices(tf.ones([3, 2]), tf.constant([1, 3, 3]), tf.constant([6, 2]))
    lazy = optim.coupled_l2(sparse, table, 0.5, lazy=True)
    assert isinstance(lazy, tf.IndexedSlices)
    dense = tf.convert_to_tensor(lazy).numpy()
    expected = np.zeros([6, 2], np.float32)
    expected[1] = 1 + 0.5 * table.numpy()[1]
    expected[3] = 2 + 0.5 * table.numpy()[3]  # duplicates summed first: λ·w once per row
    np.testing.assert_allclose(dense, expected)
    faithful = optim.coupled_l2(sparse, table, 0.5).numpy()
    assert (faithful[[0, 2, 4, 5]] == 0.5 * table.numpy()[[0, 2, 4, 5]]).all()


@pytest.mark.parametrize("l2_mode, untouched_rows_move", [("lazy", False), ("dense", True)])
def test_lazy_l2_step_leaves_rows_outside_the_batch_alone(l2_mode, untouched_rows_move):
    model, _ = _supernet()
    groups = network.variable_groups(model)
    step = optim.make_train_step(model, groups, SETTINGS, l2_mode=l2_mode)
    table = groups["emb"][0]
    before = table.numpy()
    features, labels = _batch()
    step.run(iter(tf.data.Dataset.from_tensors((features, labels))), 1)
    in_batch = np.unique(features["feature"])
    outside = np.setdiff1d(np.arange(TABLE), in_batch)
    assert not np.allclose(table.numpy()[in_batch], before[in_batch])
    assert (not np.array_equal(table.numpy()[outside], before[outside])) == untouched_rows_move


def _lazy_adam(w0, steps, lr, l2, b1=0.9, b2=0.999, eps=1e-8):
    """LazyAdam by hand: steps are [(rows, gradient rows)] (rows may repeat: summed); a row's moments decay and the
    row moves only at the steps whose batch holds it, with the bias correction of the global step t."""
    w, m, v = w0.astype(np.float64).copy(), np.zeros(w0.shape), np.zeros(w0.shape)
    for t, (rows, values) in enumerate(steps, start=1):
        summed = {}
        for row, value in zip(rows, values):
            summed[row] = summed.get(row, 0.0) + value
        for row, g in summed.items():
            g = g + l2 * w[row]
            m[row] = b1 * m[row] + (1 - b1) * g
            v[row] = b2 * v[row] + (1 - b2) * g * g
            w[row] -= lr * (m[row] / (1 - b1 ** t)) / (np.sqrt(v[row] / (1 - b2 ** t)) + eps)
    return w


@pytest.mark.parametrize("l2", [0.0, 0.5])
def test_lazy_embedding_update_moves_only_the_rows_in_each_batch(l2):
    """Hand-computed LazyAdam: step 1 hits rows 0 and 2, step 2 rows 2 (twice) and 3. Row 1 never moves; row 0 does
    not move at step 2 (the dense update would: its first moment is not zero); repeated rows are summed."""
    rng = np.random.default_rng(3)
    w0 = rng.normal(0, 1, (4, 2)).astype(np.float32)
    steps = [([0, 2], rng.normal(0, 1e-3, (2, 2)).astype(np.float32)),
             ([2, 2, 3], rng.normal(0, 1e-3, (3, 2)).astype(np.float32))]
    table = tf.Variable(w0)
    optimizer = optim.GroupedAdam({"emb": [table]}, {"emb": optim.GroupSettings(1e-2, l2)}, sparse_groups=("emb",))
    optimizer.build()
    after_first = None
    for rows, values in steps:
        optimizer.step([tf.IndexedSlices(tf.constant(values), tf.constant(rows), tf.constant([4, 2]))])
        after_first = table.numpy() if after_first is None else after_first
    np.testing.assert_allclose(table.numpy(), _lazy_adam(w0, steps, 1e-2, l2), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(table.numpy()[1], w0[1])
    np.testing.assert_array_equal(table.numpy()[0], after_first[0])


def test_lazy_embedding_train_step_leaves_the_rows_of_earlier_batches_alone():
    model, _ = _supernet()
    groups = network.variable_groups(model)
    step = optim.make_train_step(model, groups, SETTINGS, embedding_update="lazy")
    table = groups["emb"][0]
    first, labels = _batch(seed=1)
    second, _ = _batch(seed=2)
    step.run(iter(tf.data.Dataset.from_tensors((first, labels))), 1)
    after_first = table.numpy()
    step.run(iter(tf.data.Dataset.from_tensors((second, labels))), 1)
    only_first = np.setdiff1d(np.unique(first["feature"]), np.unique(second["feature"]))
    assert only_first.size and np.array_equal(table.numpy()[only_first], after_first[only_first])
    assert not np.allclose(table.numpy()[np.unique(second["feature"])], after_first[np.unique(second["feature"])])
    with pytest.raises(ValueError, match="embedding_update must be one of"):
        optim.make_train_step(model, groups, SETTINGS, embedding_update="sparse")


@pytest.mark.parametrize("precision, jit", [("mixed_bfloat16", False), ("float32", True)])
def test_mixed_precision_and_xla_train_steps_keep_float32_variables_and_loss(precision, jit):
    with optim.precision_policy(precision):
        model, _ = _supernet()
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert all(v.dtype == tf.float32 for v in model.variables)
    step = optim.make_train_step(model, network.variable_groups(model), SETTINGS, precision=precision,
                                 jit_compile=jit)
    features, labels = _batch()
    done, loss, _ = step.run(iter(tf.data.Dataset.from_tensors((features, labels)).repeat(2)), 4)
    assert done == 2 and np.isfinite(loss)


def test_float16_loss_scaling_skips_a_non_finite_step():
    variable = tf.Variable([1.0, 2.0])
    model = keras.Sequential([keras.layers.Lambda(lambda x: tf.reduce_sum(x * variable, axis=1, keepdims=True))])
    optimizer = optim.GroupedAdam({"nn": [variable]}, {"nn": optim.GroupSettings(0.1)})
    optimizer.build()
    scale = optim.DynamicLossScale(initial_scale=4.0)
    step = optim.TrainStep(model, optimizer, loss_scale=scale)
    bad = tf.data.Dataset.from_tensors((tf.constant([[np.inf, 1.0]]), tf.constant([[1.0]])))
    step.run(iter(bad), 1)
    assert variable.numpy().tolist() == [1.0, 2.0] and float(scale.scale) == 2.0  # skipped, scale halved
    good = tf.data.Dataset.from_tensors((tf.constant([[1.0, 1.0]]), tf.constant([[1.0]])))
    step.run(iter(good), 1)
    assert variable.numpy().tolist() != [1.0, 2.0] and float(scale.scale) == 2.0


# --- distribution -----------------------------------------------------------------------------------------------

_MIRRORED_SCRIPT = r"""
import os, sys, json
os.environ["TF_USE_LEGACY_KERAS"] = "1"
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
# Deterministic kernels: otherwise a reduction's order follows the thread pool's scheduling, and on a loaded machine
# Adam's normalised step turns that rounding in a near-zero gradient (an op weight α) into a visible difference.
tf.config.experimental.enable_op_determinism()
from tests.trainer.optfusion.helpers import SETTINGS, TABLE, FIELDS, DIM, _batch
from trainer.optfusion import fit, optim, training
from trainer.optfusion import network

def train(strategy, precision, initial):
    with optim.precision_policy(precision), strategy.scope():
        model, _ = training.build_supernet(training.SupernetConfig(TABLE, FIELDS, DIM))
    if initial is None:
        initial = [v.numpy() for v in model.variables]
    for v, value in zip(model.variables, initial):
        v.assign(value)
    step = optim.make_train_step(model, network.variable_groups(model), SETTINGS, precision=precision,
                                 strategy=strategy)
    features, labels = _batch(rows=48, seed=3)
    data = tf.data.Dataset.from_tensor_slices((features, labels)).batch(16)
    losses = [step.run(iter(strategy.experimental_distribute_dataset(data)), 3)[1] for _ in range(2)]
    logits, _ = step.predict(data)
    return initial, losses, [v.numpy() for v in model.variables], logits, strategy.num_replicas_in_sync

for precision in sys.argv[1:]:
    initial, losses_a, weights_a, logits_a, n_a = train(tf.distribute.get_strategy(), precision, None)
    _, losses_b, weights_b, logits_b, n_b = train(optim.choose_strategy(["/cpu:0", "/cpu:1"]), precision, initial)
    assert (n_a, n_b) == (1, 2), (n_a, n_b)
    # Two replicas sum two half-batch gradients, one device reduces the whole batch: the same sum in another
    # order, so float32 rounding differs (~1e-7), and Adam's normalised steps (the arch group's rate is 0.3)
    # carry that into the weights at ~1e-5 (2.6e-5 seen on a CI machine). What this test is for differs by far
    # more than 1e-4: a replica stepping on its half batch alone (weights off by a learning rate, 1e-3 or more),
    # or a loss summed over replicas instead of averaged (losses off by 2x).
    tol = 1e-4 if precision == "float32" else 2e-2
    np.testing.assert_allclose(losses_a, losses_b, rtol=tol)
    np.testing.assert_allclose(logits_a, logits_b, rtol=tol, atol=tol)
    for a, b in zip(weights_a, weights_b):
        np.testing.assert_allclose(a, b, rtol=tol, atol=tol)
    print("OK", precision, losses_a, losses_b)
"""


def test_mirrored_strategy_on_two_cpu_replicas_matches_the_default_strategy():
    """Two CPU replicas (each half of every batch, gradients summed) train exactly as one device does; float16
    exercises the loss-scaling path across replicas. A subprocess: logical devices must be set before TF starts."""
    result = subprocess.run([sys.executable, "-c", _MIRRORED_SCRIPT, "float32", "mixed_float16"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=900,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    assert result.returncode == 0 and result.stdout.count("OK") == 2, result.stderr[-4000:]


# --- coupled L2 folded into the XLA-fused Adam update ------------------------------------------------------------

def _count_folded_updates(monkeypatch) -> list:
    """Records each (traced or eager) call of the XLA-fused L2 + Adam update by the shape of its variable."""
    calls = []
    fused = optim._xla_adam_with_coupled_l2

    def spy(**kwargs):
        calls.append(tuple(kwargs["grad"].shape))
        return fused(**kwargs)

    monkeypatch.setattr(optim, "_xla_adam_with_coupled_l2", spy)
    return calls


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("l2_mode", ["dense", "lazy"])
def test_folded_l2_is_pytorch_adam_and_the_separate_l2_pass(monkeypatch, l2_mode, precision):
    """GroupedAdam.step (λ·w inside the fused update) = PyTorch's Adam with weight_decay (numpy) = the previous
    path, apply(regularize(g)), on an embedding (sparse gradient; rows 0, 2, 3, 5 in every batch, 1 and 4 in
    none) and a dense layer, under float32 and a mixed_bfloat16 policy (AutoCast variables, bfloat16 compute)."""
    lr, l2, steps = 1e-2, 0.5, 3
    with optim.precision_policy(precision):
        ids = keras.Input([2], dtype="int64")
        embedding = keras.layers.Embedding(6, 3)
        dense = keras.layers.Dense(1)
        model = keras.Model(ids, dense(keras.layers.Flatten()(embedding(ids))))
    variables = {"emb": [embedding.embeddings], "nn": dense.trainable_weights}
    initial = [v.numpy() for vs in variables.values() for v in vs]
    rng = np.random.default_rng(2)
    batches = [tf.constant(rng.permutation([0, 2, 3, 5] * 2).reshape(4, 2), tf.int64) for _ in range(steps)]
    gradients = []  # every step's loss gradients at the initial weights: the optimiser's inputs, recorded once
    for batch in batches:
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(tf.cast(model(batch), tf.float32) - 0.3))
        gradients.append(tape.gradient(loss, [v for vs in variables.values() for v in vs]))
    assert isinstance(gradients[0][0], tf.IndexedSlices)

    def train(fold: bool) -> list[np.ndarray]:
        for variable, value in zip([v for vs in variables.values() for v in vs], initial):
            variable.assign(value)
        optimizer = optim.GroupedAdam(variables,
                                      {"emb": optim.GroupSettings(lr, l2), "nn": optim.GroupSettings(lr, l2)},
                                      l2_mode=l2_mode, fold_l2=fold)
        optimizer.build()
        step = tf.function(optimizer.step)
        for g in gradients:
            step(g)
        return [v.numpy() for vs in variables.values() for v in vs]

    calls = _count_folded_updates(monkeypatch)
    folded = train(fold=True)
    # dense: every variable's L2 goes into the fused update; lazy: the table's (sparse rows) does not.
    assert sorted(calls) == sorted([(6, 1), (1,)] + ([(6, 3)] if l2_mode == "dense" else []))
    separate = train(fold=False)
    assert len(calls) == 3 - (l2_mode == "lazy")  # the previous path does not use it

    dense_gradients = [[tf.convert_to_tensor(g).numpy() for g in step] for step in gradients]
    for k, (w0, new, old) in enumerate(zip(initial, folded, separate)):
        expected = _torch_adam(w0, [step[k] for step in dense_gradients], lr, l2)
        if k == 0 and l2_mode == "lazy":  # rows 1 and 4 are never in a batch: no weight decay there
            expected[[1, 4]] = _torch_adam(w0[[1, 4]], [step[0][[1, 4]] for step in dense_gradients], lr, 0.0)
        np.testing.assert_allclose(new, expected, rtol=1e-5, atol=1e-6)
        # The same maths as the separate pass; XLA's multiply-adds round once (FMA), the kernel's twice.
        np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-7)
        assert not np.array_equal(new, w0)


@pytest.mark.parametrize("precision", ["float32", "mixed_bfloat16"])
def test_search_train_step_with_the_folded_l2_trains_as_the_separate_pass(monkeypatch, precision):
    """The search's TrainStep, λ·w folded into the fused update, trains as the previous path (regularize, then the
    kernel) does; the architecture group (no L2) stays on the plain ResourceApplyAdam kernel."""
    calls = _count_folded_updates(monkeypatch)
    weights = {}
    for fold in (True, False):
        with optim.precision_policy(precision):
            model, _ = _supernet()
        groups = network.variable_groups(model)
        optimizer = optim.GroupedAdam(groups, SETTINGS, fold_l2=fold)
        optimizer.build()
        step = optim.TrainStep(model, optimizer)
        done, loss, _ = step.run(iter(tf.data.Dataset.from_tensors(_batch()).repeat(2)), 2)
        assert done == 2 and np.isfinite(loss)
        weights[fold] = [v.numpy() for v in model.trainable_variables]
        # traced once, with the folded update for every variable of the decayed groups, none of "arch"
        assert len(calls) == len(groups["emb"]) + len(groups["nn"])
    for new, old in zip(weights[True], weights[False]):
        np.testing.assert_allclose(new, old, rtol=1e-5, atol=1e-7)  # measured: at most 7e-7 and 3e-8


def test_a_group_without_l2_stays_on_the_fused_kernel(monkeypatch):
    calls = _count_folded_updates(monkeypatch)
    variable = tf.Variable([1.0, -2.0])
    optimizer = optim.GroupedAdam({"nn": [variable]}, {"nn": optim.GroupSettings(0.1)})
    optimizer.build()
    optimizer.step([tf.constant([0.5, 0.5])])
    assert calls == [] and np.allclose(variable.numpy(), [0.9, -2.1])
