"""Grouped Adam with coupled L2, a custom train step, mixed precision and device strategy (algorithms.md §1.4, §1.11).

The OptFusion reference trains three parameter groups from ONE training-batch gradient, each with its own Adam
(PyTorch, eps 1e-8): the embedding table (lr_emb, weight_decay l2_emb), the other network weights (lr_nn, l2_nn)
and the architecture parameters β, α (arch_lr, no weight decay). PyTorch's Adam `weight_decay` is *coupled* L2:
λ·w is added to the gradient before the Adam moments, for every element of the group (for the embedding: every
row of the table, whether or not it was in the batch). `GroupedAdam` reproduces that; `l2_mode="lazy"` adds
λ·w only to the table rows looked up in the batch (much cheaper on a large table, not the reference's maths).

Adam (`TorchAdam`): PyTorch's update exactly, lr·m̂/(sqrt(v̂)+eps) with eps 1e-8, through TF's fused
`ResourceApplyAdam` kernel (one multi-threaded pass over var, m, v and the gradient; Keras' Adam runs about a
dozen element-wise ops, a visible share of a step on the supernet's 241M weights on a 2-core CPU), with
eps·sqrt(1-β2^t) as the kernel's epsilon, which turns its formula into PyTorch's. A sparse (IndexedSlices)
embedding gradient is densified first: PyTorch's Adam on an `nn.Embedding` sees a dense gradient (zeros outside the
batch), decays the moments of every row and moves every row, and so does this one, whatever the L2 mode.

Coupled L2 inside the update: for a group decayed on every element (L2 mode "dense", or any group outside the lazy
ones), `GroupedAdam.step` passes λ to `TorchAdam`, which runs ResourceApplyAdam on g + λ·w as one XLA-compiled
function per variable (`_xla_adam_with_coupled_l2`): the weights and moments are updated in place and no
temporary of the variable's size is made. Adding λ·w first (`coupled_l2`, `GroupedAdam.regularize`, kept as the
reference and for `fold_l2=False`) costs a multiply and an add over every weight and a new temporary as large as
the variable, whose first touch (page faults) is most of that cost; `benchmarks/optfusion_throughput.py` measures
both. The maths are the same (XLA rounds a multiply-add once, FMA, where the kernel rounds twice: results may
differ in the last bit); with λ = 0 the gradient goes to the kernel as it is.

`TrainStep` is the hot path: a `tf.function` that runs up to `steps_per_execution` steps per call (no Python per
step), optionally XLA-compiled (`jit_compile`) for the forward/backward pass, under a `tf.distribute` strategy
picked from the devices (`choose_strategy`), with float16 dynamic loss scaling when the precision policy is
mixed_float16. Variables and the loss are float32 under every policy.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Iterator, Mapping, Sequence

import numpy as np
import tensorflow as tf

keras = tf.keras

ADAM_EPSILON = 1e-8
L2_MODES: tuple[str, ...] = ("dense", "lazy")
EMBEDDING_UPDATES: tuple[str, ...] = ("dense", "lazy")
PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16", "mixed_float16")
EMBEDDING_GROUP = "emb"


# --- precision and devices --------------------------------------------------------------------------------------

@contextlib.contextmanager
def precision_policy(name: str) -> Iterator[None]:
    """Sets the global Keras dtype policy for the models built inside the block, then restores the previous one.

    name: "float32", "mixed_bfloat16" or "mixed_float16" (float32 variables, 16-bit compute).
    """
    if name not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {name!r}")
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def choose_strategy(devices: Sequence[str] | None = None) -> tf.distribute.Strategy:
    """The distribution strategy for the visible devices: MirroredStrategy over several GPUs, OneDeviceStrategy on
    one GPU, the default strategy on CPU. `devices` (e.g. ["/cpu:0", "/cpu:1"]) forces a MirroredStrategy."""
    if devices:
        return tf.distribute.MirroredStrategy(list(devices))
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        return tf.distribute.MirroredStrategy([g.name for g in gpus])
    if len(gpus) == 1:
        return tf.distribute.OneDeviceStrategy(gpus[0].name)
    return tf.distribute.get_strategy()


# --- coupled L2 and the grouped optimiser -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class GroupSettings:
    """Adam settings of one parameter group: learning rate and coupled L2 λ (gradient += λ·w)."""

    learning_rate: float
    l2: float = 0.0


def coupled_l2(gradient: tf.Tensor | tf.IndexedSlices, variable: tf.Variable, l2: float,
               lazy: bool = False) -> tf.Tensor | tf.IndexedSlices:
    """The gradient of `loss + λ/2·‖w‖²`: gradient + λ·w (PyTorch Adam `weight_decay`).

    A sparse (IndexedSlices) gradient becomes dense over the whole variable (the reference decays every row) unless
    `lazy`, in which case λ·w is added only to the rows in the gradient's indices (duplicates summed first, so each
    row gets λ·w once) and the result stays sparse.
    """
    if not l2:
        return gradient
    if isinstance(gradient, tf.IndexedSlices):
        if lazy:
            unique, positions = tf.unique(gradient.indices)
            values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(unique)[0])
            rows = tf.gather(variable, unique)
            return tf.IndexedSlices(values + tf.cast(l2, rows.dtype) * rows, unique, gradient.dense_shape)
        gradient = tf.convert_to_tensor(gradient)
    return gradient + tf.cast(l2, variable.dtype) * variable


def unscale(gradient: tf.Tensor | tf.IndexedSlices | None, scale: tf.Tensor) -> tf.Tensor | tf.IndexedSlices | None:
    """Undoes float16 loss scaling: gradient / scale, with the gradient's type, shape and dtype (IndexedSlices stay
    sparse); None (a variable the loss does not reach) stays None."""
    if gradient is None:
        return None
    if isinstance(gradient, tf.IndexedSlices):
        return tf.IndexedSlices(gradient.values / tf.cast(scale, gradient.values.dtype), gradient.indices,
                                gradient.dense_shape)
    return gradient / tf.cast(scale, gradient.dtype)


def _handle(variable: tf.Variable) -> tf.Tensor:
    """The resource handle of a variable (inside a strategy's update, a distributed one's local component)."""
    return variable.handle


def _adam_scalars(optimizer: tf.keras.optimizers.Adam, dtype: tf.DType) -> dict[str, tf.Tensor]:
    """ResourceApplyAdam's scalar inputs for the optimiser's next step, with eps·sqrt(1-β2^t) as the kernel's
    epsilon: the kernel computes lr·sqrt(1-β2^t)/(1-β1^t)·m/(sqrt(v)+ε), with that ε lr·m̂/(sqrt(v̂)+eps), PyTorch's
    update."""
    step = tf.cast(optimizer.iterations + 1, dtype)
    beta_1_power = tf.pow(tf.cast(optimizer.beta_1, dtype), step)
    beta_2_power = tf.pow(tf.cast(optimizer.beta_2, dtype), step)
    return {"beta1_power": beta_1_power, "beta2_power": beta_2_power, "lr": tf.cast(optimizer.learning_rate, dtype),
            "beta1": tf.cast(optimizer.beta_1, dtype), "beta2": tf.cast(optimizer.beta_2, dtype),
            "epsilon": tf.cast(optimizer.epsilon, dtype) * tf.sqrt(1.0 - beta_2_power)}


@tf.function(jit_compile=True, autograph=False)
def _xla_adam_with_coupled_l2(var, m, v, grad, l2, beta1_power, beta2_power, lr, beta1, beta2, epsilon):
    """ResourceApplyAdam on grad + λ·var, XLA-compiled: g + λ·w is computed inside the update's element-wise
    loops (no temporary of the variable's size) and the weights and moments are written in place (XLA aliases the
    variables' buffers). XLA's CPU backend emits one loop per output (new m, new v, new weights), each reading what
    it needs; `coupled_l2` followed by the kernel makes a multiply and an add over the variable into a new
    temporary first."""
    weights = tf.raw_ops.ReadVariableOp(resource=var, dtype=grad.dtype)
    tf.raw_ops.ResourceApplyAdam(var=var, m=m, v=v, beta1_power=beta1_power, beta2_power=beta2_power, lr=lr,
                                 beta1=beta1, beta2=beta2, epsilon=epsilon, grad=grad + l2 * weights,
                                 use_locking=False)


def lazy_adam_rows(m_rows: tf.Tensor, v_rows: tf.Tensor, gradient_rows: tf.Tensor, step: tf.Tensor, lr: tf.Tensor,
                   beta_1: tf.Tensor, beta_2: tf.Tensor, epsilon: float = ADAM_EPSILON
                   ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """The lazy Adam update of the table rows in a batch (LazyAdam, as TensorFlow Addons defined it): only these rows'
    moments decay and only these rows move, with PyTorch's bias correction at the optimiser's global step `step`
    (1-based). Returns (new m rows, new v rows, the step to subtract from the rows), each [rows, dim]."""
    m_rows = beta_1 * m_rows + (1.0 - beta_1) * gradient_rows
    v_rows = beta_2 * v_rows + (1.0 - beta_2) * tf.square(gradient_rows)
    m_hat = m_rows / (1.0 - tf.pow(beta_1, step))
    v_hat = v_rows / (1.0 - tf.pow(beta_2, step))
    return m_rows, v_rows, lr * m_hat / (tf.sqrt(v_hat) + epsilon)


class TorchAdam(tf.keras.optimizers.Adam):
    """PyTorch's Adam, eps 1e-8, on the fused ResourceApplyAdam kernel; sparse gradients are densified (PyTorch's
    dense embedding gradient), unless `lazy`.

    Coupled L2 (PyTorch's `weight_decay`): `apply_gradients(..., coupled_l2=λ)` adds λ·w to each gradient inside
    the XLA-compiled Adam update (`_xla_adam_with_coupled_l2`); with λ = 0 (the default) the gradients go to the
    kernel as they are.

    Args:
        lazy: a sparse (IndexedSlices) gradient updates only its rows (`lazy_adam_rows`: the moments of the other
            rows do not decay, the other rows do not move), so a step costs the batch's rows, not the table's.
            Not PyTorch's maths: the `--embedding-update lazy` option for full-size vocabularies.
    """

    def __init__(self, learning_rate: float, name: str = "torch_adam", lazy: bool = False, **kwargs) -> None:
        super().__init__(learning_rate=learning_rate, epsilon=ADAM_EPSILON, adaptive_epsilon=True,
                         jit_compile=False, name=name, **kwargs)
        self._coupled_l2 = 0.0
        self.lazy = lazy

    def apply_gradients(self, grads_and_vars, name=None, skip_gradients_aggregation=False, coupled_l2: float = 0.0,
                        **kwargs):
        """Keras' apply_gradients; coupled_l2: λ, added as λ·w to every gradient inside the update."""
        self._coupled_l2 = float(coupled_l2)  # read by update_step, which runs (or is traced) inside this call
        try:
            return super().apply_gradients(grads_and_vars, name=name,
                                           skip_gradients_aggregation=skip_gradients_aggregation, **kwargs)
        finally:
            self._coupled_l2 = 0.0

    def update_step(self, gradient, variable):
        """One PyTorch Adam step of `variable` on ResourceApplyAdam (Keras' own step under amsgrad)."""
        if self.amsgrad:
            return super().update_step(gradient, variable)
        if self.lazy and isinstance(gradient, tf.IndexedSlices):
            return self._lazy_update(gradient, variable)
        if isinstance(gradient, tf.IndexedSlices):
            # PyTorch's Adam sees the dense gradient of an embedding (zeros outside the batch) and decays the moments
            # of every row; Keras' sparse path does the same in about a dozen passes over the table, densifying
            # takes one (duplicate indices are summed).
            gradient = tf.ensure_shape(tf.convert_to_tensor(gradient), variable.shape)
        dtype = variable.dtype
        index = self._index_dict[self._var_key(variable)]
        handles = {"var": _handle(variable), "m": _handle(self._momentums[index]),
                   "v": _handle(self._velocities[index])}
        scalars = _adam_scalars(self, dtype)
        if self._coupled_l2:
            return _xla_adam_with_coupled_l2(grad=gradient, l2=tf.constant(self._coupled_l2, dtype), **handles,
                                             **scalars)
        return tf.raw_ops.ResourceApplyAdam(grad=gradient, use_locking=False, **handles, **scalars)

    def _lazy_update(self, gradient: tf.IndexedSlices, variable: tf.Variable) -> tf.Operation:
        """`lazy_adam_rows` on the gradient's rows (duplicate indices summed), through the variables' handles as the
        dense path (inside a strategy's update: the local components)."""
        dtype = variable.dtype
        rows, positions = tf.unique(gradient.indices)
        values = tf.math.unsorted_segment_sum(gradient.values, positions, tf.shape(rows)[0])
        index = self._index_dict[self._var_key(variable)]
        m, v = _handle(self._momentums[index]), _handle(self._velocities[index])
        m_rows, v_rows, delta = lazy_adam_rows(
            tf.raw_ops.ResourceGather(resource=m, indices=rows, dtype=dtype),
            tf.raw_ops.ResourceGather(resource=v, indices=rows, dtype=dtype), values,
            tf.cast(self.iterations + 1, dtype), tf.cast(self.learning_rate, dtype), tf.cast(self.beta_1, dtype),
            tf.cast(self.beta_2, dtype))
        return tf.group(tf.raw_ops.ResourceScatterUpdate(resource=m, indices=rows, updates=m_rows),
                        tf.raw_ops.ResourceScatterUpdate(resource=v, indices=rows, updates=v_rows),
                        tf.raw_ops.ResourceScatterSub(resource=_handle(variable), indices=rows, updates=delta))


class GroupedAdam:
    """One Adam (`TorchAdam`: PyTorch-exact, eps 1e-8) per parameter group, all stepped from one gradient.

    Args:
        groups: {group name: variables}; every variable in exactly one group. Empty groups are dropped.
        settings: {group name: GroupSettings}; a setting for every non-empty group.
        l2_mode: "dense" (the reference: λ·w on every element, the whole embedding table included) or "lazy"
            (only the embedding rows in the batch get λ·w; dense weights are unaffected by the mode).
        lazy_groups: the groups `l2_mode="lazy"` applies to. Defaults to the embedding group.
        fold_l2: `step` adds the coupled L2 inside the XLA-compiled Adam update instead of as a separate
            `regularize` pass before the kernel (the same maths; False: the separate pass, kept for comparison).
        sparse_groups: groups updated lazily (`TorchAdam(lazy=True)`: only the rows in the batch); their L2 is lazy
            too, whatever `l2_mode`.
    """

    def __init__(self, groups: Mapping[str, Sequence[tf.Variable]], settings: Mapping[str, GroupSettings],
                 l2_mode: str = "dense", lazy_groups: Sequence[str] = (EMBEDDING_GROUP,),
                 fold_l2: bool = True, sparse_groups: Sequence[str] = ()) -> None:
        if l2_mode not in L2_MODES:
            raise ValueError(f"l2_mode must be one of {L2_MODES}, got {l2_mode!r}")
        self.groups = {name: list(variables) for name, variables in groups.items() if variables}
        missing = set(self.groups) - set(settings)
        if missing:
            raise ValueError(f"no GroupSettings for group(s) {sorted(missing)}")
        seen: set = set()
        for variables in self.groups.values():
            for variable in variables:
                if variable.ref() in seen:
                    raise ValueError(f"variable {variable.name} is in more than one group")
                seen.add(variable.ref())
        self.settings = {name: settings[name] for name in self.groups}
        self.l2_mode = l2_mode
        self.sparse_groups = tuple(sparse_groups)
        self.lazy_groups = tuple(lazy_groups) if l2_mode == "lazy" else ()
        self.lazy_groups += tuple(g for g in self.sparse_groups if g not in self.lazy_groups)
        self.fold_l2 = fold_l2
        self.optimizers = {name: TorchAdam(s.learning_rate, name=f"adam_{name}", lazy=name in self.sparse_groups)
                           for name, s in self.settings.items()}

    @property
    def variables(self) -> list[tf.Variable]:
        """Every trained variable, group by group (the order of `regularize`'s and `apply`'s gradient lists)."""
        return [v for variables in self.groups.values() for v in variables]

    def build(self) -> None:
        """Creates the Adam slots (call under the strategy scope, before tracing a train step)."""
        for name, optimizer in self.optimizers.items():
            optimizer.build(self.groups[name])

    def regularize(self, gradients: Sequence[tf.Tensor | tf.IndexedSlices | None]) -> list:
        """Loss gradients (in `variables` order) -> the gradients Adam sees: + λ·w per group (coupled L2)."""
        result, i = [], 0
        for name, variables in self.groups.items():
            l2 = self.settings[name].l2
            lazy = name in self.lazy_groups
            for variable in variables:
                gradient = gradients[i]
                i += 1
                if gradient is None:
                    gradient = tf.zeros_like(variable) if l2 else None
                result.append(None if gradient is None else coupled_l2(gradient, variable, l2, lazy))
        return result

    def step(self, gradients: Sequence[tf.Tensor | tf.IndexedSlices | None]) -> None:
        """One step from loss gradients (in `variables` order; across replicas, already summed): coupled L2 and
        Adam, group by group; the same maths as `apply(regularize(gradients))`.

        With `fold_l2`, a group whose every element is decayed (L2 mode "dense", or a group outside `lazy_groups`)
        gets λ·w inside the fused update (`TorchAdam.apply_gradients(coupled_l2=λ)`); a lazy group's sparse rows
        get it from `coupled_l2` first, as in `regularize`.
        """
        if not self.fold_l2:
            self.apply(self.regularize(gradients))
            return
        i = 0
        for name, variables in self.groups.items():
            l2 = self.settings[name].l2
            lazy = name in self.lazy_groups
            pairs = []
            for variable in variables:
                gradient = gradients[i]
                i += 1
                if gradient is None:
                    if not l2:
                        continue
                    gradient = tf.zeros_like(variable)
                pairs.append((coupled_l2(gradient, variable, l2, lazy=True) if lazy else gradient, variable))
            if pairs:
                self.optimizers[name].apply_gradients(pairs, skip_gradients_aggregation=True,
                                                      coupled_l2=0.0 if lazy else l2)

    def apply(self, gradients: Sequence[tf.Tensor | tf.IndexedSlices | None]) -> None:
        """Applies already regularised (and, across replicas, already summed) gradients, group by group."""
        i = 0
        for name, variables in self.groups.items():
            pairs = [(g, v) for g, v in zip(gradients[i:i + len(variables)], variables) if g is not None]
            i += len(variables)
            if pairs:
                self.optimizers[name].apply_gradients(pairs, skip_gradients_aggregation=True)

    def skip(self) -> None:
        """A skipped step (non-finite float16 gradients): only the step counters move, as in Keras."""
        for optimizer in self.optimizers.values():
            optimizer.iterations.assign_add(1)

    def learning_rates(self) -> dict[str, float]:
        """{group name: its Adam's current learning rate}."""
        return {name: float(keras.backend.get_value(o.learning_rate)) for name, o in self.optimizers.items()}


class DynamicLossScale:
    """float16 dynamic loss scaling (as Keras' LossScaleOptimizer): start at 2^15, halve on a non-finite gradient
    (the step is skipped), double after `growth_steps` finite steps in a row."""

    def __init__(self, initial_scale: float = 2.0 ** 15, growth_steps: int = 2000) -> None:
        self.scale = tf.Variable(initial_scale, dtype=tf.float32, trainable=False, name="loss_scale",
                                 synchronization=tf.VariableSynchronization.ON_READ,
                                 aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.good_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="loss_scale_good_steps",
                                      synchronization=tf.VariableSynchronization.ON_READ,
                                      aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)
        self.growth_steps = growth_steps

    def update(self, finite: tf.Tensor) -> None:
        """Moves the scale after a step; finite: bool scalar tensor, every gradient of the step finite.

        Finite: one more good step, and the scale doubles (the count restarts) at `growth_steps`. Not finite: the
        scale halves (never below 1) and the count restarts.
        """
        def grow():
            grown = self.good_steps + 1 >= self.growth_steps
            self.scale.assign(tf.where(grown, self.scale * 2.0, self.scale))
            self.good_steps.assign(tf.where(grown, tf.constant(0, tf.int64), self.good_steps + 1))

        def shrink():
            self.scale.assign(tf.maximum(self.scale / 2.0, 1.0))
            self.good_steps.assign(0)

        tf.cond(finite, grow, shrink)


def _all_finite(distribution: tf.distribute.Strategy, gradients: Sequence) -> tf.Tensor:
    checks = []
    for gradient in gradients:
        if gradient is None:
            continue
        for local in distribution.experimental_local_results(gradient):
            values = local.values if isinstance(local, tf.IndexedSlices) else local
            checks.append(tf.reduce_all(tf.math.is_finite(values)))
    return tf.reduce_all(tf.stack(checks)) if checks else tf.constant(True)


# --- the train step ---------------------------------------------------------------------------------------------

def bce_with_logits(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per-example binary cross-entropy on logits, float32 [batch]."""
    labels = tf.reshape(tf.cast(labels, tf.float32), [-1])
    logits = tf.reshape(tf.cast(logits, tf.float32), [-1])
    return tf.nn.sigmoid_cross_entropy_with_logits(labels=labels, logits=logits)


class TrainStep:
    """Runs training steps of a logit model with a GroupedAdam under a strategy.

    The model and the optimiser must have been created under `strategy.scope()`. Each call of `run(iterator, n)`
    is one `tf.function` call executing up to n steps (fewer at the end of the data) and returning
    (steps run, summed batch-mean loss): the loop never returns to Python between steps.

    Args:
        model: a Keras model features -> logit [batch, 1] (float32 output).
        optimizer: the GroupedAdam over (a subset of) the model's trainable variables.
        strategy: the tf.distribute strategy the model was built under. Defaults to the current one.
        jit_compile: XLA-compile the forward and backward pass of each replica step.
        loss_scale: a DynamicLossScale for mixed_float16, else None.
    """

    def __init__(self, model: tf.keras.Model, optimizer: GroupedAdam, strategy: tf.distribute.Strategy | None = None,
                 jit_compile: bool = False, loss_scale: DynamicLossScale | None = None) -> None:
        self.model = model
        self.optimizer = optimizer
        self.strategy = strategy or tf.distribute.get_strategy()
        self.jit_compile = jit_compile
        self.loss_scale = loss_scale
        self.variables = optimizer.variables
        self._gradients = tf.function(self._loss_and_gradients, jit_compile=jit_compile or None)
        self._run = tf.function(self._run_steps)
        self._predict = tf.function(self._predict_steps)

    def _loss_and_gradients(self, features, labels):
        with tf.GradientTape() as tape:
            logits = self.model(features, training=True)
            loss = tf.nn.compute_average_loss(bce_with_logits(labels, logits))
            if self.model.losses:  # layer regularisers (left at 0 when the optimiser applies the L2)
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.model.losses))
            scaled = loss * self.loss_scale.scale if self.loss_scale is not None else loss
        return loss, tape.gradient(scaled, self.variables)

    def _replica_step(self, features, labels):
        loss, gradients = self._gradients(features, labels)
        context = tf.distribute.get_replica_context()
        if self.strategy.num_replicas_in_sync > 1:
            present = [i for i, g in enumerate(gradients) if g is not None]
            summed = context.all_reduce(tf.distribute.ReduceOp.SUM, [gradients[i] for i in present])
            gradients = list(gradients)
            for i, g in zip(present, summed):
                gradients[i] = g
        count = tf.cast(tf.shape(labels)[0], tf.float32)
        if self.loss_scale is None:
            self.optimizer.step(gradients)
            return loss, count
        gradients = [unscale(g, self.loss_scale.scale) for g in gradients]

        def cross_replica(distribution, gradients):
            finite = _all_finite(distribution, gradients)

            def apply():
                distribution.extended.call_for_each_replica(
                    self.optimizer.step, args=(gradients,))

            # The condition runs in cross-replica context: a branch that calls merge_call (the Keras optimisers'
            # apply does) may not sit inside a replica-context cond.
            tf.cond(finite, apply, self.optimizer.skip)
            assert self.loss_scale is not None  # this path runs only with a loss scale (float16)
            self.loss_scale.update(finite)

        context.merge_call(cross_replica, args=(gradients,))
        return loss, count

    def _run_steps(self, iterator, steps):
        done = tf.constant(0, tf.int64)
        total = tf.constant(0.0, tf.float32)
        examples = tf.constant(0.0, tf.float32)
        for _ in tf.range(steps):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                break
            features, labels = batch.get_value()
            loss, count = self.strategy.run(self._replica_step, args=(features, labels))
            # compute_average_loss divides by the global batch, so the replicas' losses add up to the batch mean.
            total += self.strategy.reduce(tf.distribute.ReduceOp.SUM, loss, axis=None)
            examples += self.strategy.reduce(tf.distribute.ReduceOp.SUM, count, axis=None)
            done += 1
        return done, total, examples

    def run(self, iterator, steps: int) -> tuple[int, float, int]:
        """Up to `steps` training steps from a (distributed) iterator -> (steps run, summed batch-mean losses,
        examples seen)."""
        done, total, examples = self._run(iterator, tf.constant(steps, tf.int64))
        return int(done), float(total), int(examples)

    def _predict_steps(self, iterator, steps):
        logits = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None])
        labels = tf.TensorArray(tf.float32, size=0, dynamic_size=True, infer_shape=False, element_shape=[None])
        i = 0
        for _ in tf.range(steps):
            batch = iterator.get_next_as_optional()
            if not batch.has_value():
                break
            features, y = batch.get_value()
            out = self.strategy.run(lambda f: tf.reshape(tf.cast(self.model(f, training=False), tf.float32), [-1]),
                                    args=(features,))
            y = self.strategy.run(lambda t: tf.reshape(tf.cast(t, tf.float32), [-1]), args=(y,))
            logits = logits.write(i, tf.concat(self.strategy.experimental_local_results(out), axis=0))
            labels = labels.write(i, tf.concat(self.strategy.experimental_local_results(y), axis=0))
            i += 1
        return logits.concat(), labels.concat()

    def predict(self, dataset: tf.data.Dataset, chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
        """(logits, labels) as float32 numpy vectors over a whole (features, label) dataset."""
        iterator = iter(self.strategy.experimental_distribute_dataset(dataset))
        logits, labels = [], []
        while True:
            out, y = self._predict(iterator, tf.constant(chunk, tf.int64))
            if out.shape[0] == 0:
                break
            logits.append(out.numpy())
            labels.append(y.numpy())
        if not logits:
            return np.zeros([0], np.float32), np.zeros([0], np.float32)
        return np.concatenate(logits), np.concatenate(labels)


def make_train_step(model: tf.keras.Model, groups: Mapping[str, Sequence[tf.Variable]],
                    settings: Mapping[str, GroupSettings], *, l2_mode: str = "dense", precision: str = "float32",
                    jit_compile: bool = False, strategy: tf.distribute.Strategy | None = None,
                    embedding_update: str = "dense") -> TrainStep:
    """A GroupedAdam over `groups` and its TrainStep, created under the strategy's scope. embedding_update: "dense"
    (PyTorch's Adam over the whole table, the reference) or "lazy" (only the batch's rows, TorchAdam(lazy=True)).

    Raises:
        ValueError: an unknown embedding_update.
    """
    if embedding_update not in EMBEDDING_UPDATES:
        raise ValueError(f"embedding_update must be one of {EMBEDDING_UPDATES}, got {embedding_update!r}")
    strategy = strategy or tf.distribute.get_strategy()
    with strategy.scope():
        optimizer = GroupedAdam(groups, settings, l2_mode=l2_mode,
                                sparse_groups=(EMBEDDING_GROUP,) if embedding_update == "lazy" else ())
        optimizer.build()
        loss_scale = DynamicLossScale() if precision == "mixed_float16" else None
    logging.info("GroupedAdam: %s; L2 %s; embedding update %s; precision %s; jit_compile %s; %d replica(s)",
                 {k: dataclasses.asdict(v) for k, v in optimizer.settings.items()}, l2_mode, embedding_update,
                 precision, jit_compile, strategy.num_replicas_in_sync)
    return TrainStep(model, optimizer, strategy, jit_compile=jit_compile, loss_scale=loss_scale)
