"""Every core on one batch (scratchae.engine.parallel): the same gradient as the unsplit batch, the same bits on
every run and resume for a given thread count, ``threads=1`` exactly :func:`train_step`, and a clean stop when a
part fails."""

from __future__ import annotations

import copy
import os
import signal
import threading

import numpy
import pytest

from scratchae import builders, checkpoint
from scratchae.engine.adam import FastAdam
from scratchae.engine.parallel import DataParallel, part_bounds
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.optim import SGD, Adam
from scratchae.stopping import StopRequest
from scratchae.training import TrainingDiverged, fit, train_step

#: Every kind of model, small: (builder, loss, needs labels).
KINDS = {
    "dense": (lambda: builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=1), BCELoss, False),
    "denoising": (lambda: builders.denoising_autoencoder(4, input_dim=64, seed=1), MSELoss, False),
    "vae": (lambda: builders.variational_autoencoder(2, hidden_dim=16, input_dim=64, seed=1), VAELoss, False),
    "classifier": (lambda: builders.mlp_classifier(4, input_dim=64, seed=1), SoftmaxCrossEntropyLoss, True),
    "conv": (lambda: builders.conv_autoencoder(image_shape=(1, 8, 8), channels=(4, 2, 2), seed=1), BCELoss, False),
    "conv-denoising": (lambda: builders.conv_denoising_autoencoder(image_shape=(1, 8, 8), channels=4, seed=1),
                       BCELoss, False),
    "conv-vae": (lambda: builders.conv_variational_autoencoder(image_shape=(1, 8, 8), channels=(4, 4),
                                                               hidden_dim=8, seed=1), VAELoss, False),
    # the engine's forms, whose layers keep their own state: each replica must have its own copy
    "conv-fast": (lambda: builders.conv_autoencoder(image_shape=(1, 8, 8), channels=(4, 2, 2), seed=1, fast=True),
                  BCELoss, False),
    "conv-vae-fast": (lambda: builders.conv_variational_autoencoder(image_shape=(1, 8, 8), channels=(4, 4),
                                                                    hidden_dim=8, seed=1, fast=True), VAELoss, False),
}


def data(labels: bool, n: int = 72):
    rng = numpy.random.default_rng(5)
    x = rng.random((n, 64), dtype=numpy.float32)
    return x, (rng.integers(0, 10, n) if labels else None)


def state(model, optimizer) -> list[numpy.ndarray]:
    return [p.data.copy() for p in model.parameters()] + [a.copy() for a in optimizer.m + optimizer.v]


def assert_same_bits(first, second):
    assert len(first) == len(second)
    for a, b in zip(first, second):
        numpy.testing.assert_array_equal(a, b)


def train(kind: str, threads: int, epochs: int = 2, history=None, model=None, optimizer=None, **options):
    build, loss_class, labels = KINDS[kind]
    model = model or build()
    optimizer = optimizer or (FastAdam if kind.endswith("-fast") else Adam)(model.parameters(), lr=1e-2)
    x, y = data(labels)
    history = fit(model, loss_class(), optimizer, x, y, epochs=epochs, batch_size=20, progress=False,
                  threads=threads, history=history, **options)
    return model, optimizer, history


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_the_same_thread_count_gives_the_same_bits_on_every_run(kind, threads):
    first, second = train(kind, threads), train(kind, threads)
    assert_same_bits(state(*first[:2]), state(*second[:2]))
    assert first[2].metrics == second[2].metrics


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threads", [1, 2])
def test_a_resume_from_a_checkpoint_gives_the_bits_of_a_run_that_never_stopped(kind, threads, tmp_path):
    straight = train(kind, threads, epochs=2)
    model, optimizer, history = train(kind, threads, epochs=1)
    checkpoint.save(tmp_path / "model.npz", model, optimizer, history)
    saved = checkpoint.load(tmp_path / "model.npz", fast=kind.endswith("-fast"))  # the floor it trained on
    resumed = train(kind, threads, epochs=1, history=saved.history, model=saved.model, optimizer=saved.optimizer)
    assert_same_bits(state(*straight[:2]), state(*resumed[:2]))


class StopAfterReads(StopRequest):
    """A stop asked for at the n-th time fit looks (before each epoch, after each batch and before recording it)."""

    def __init__(self, n: int):
        super().__init__()
        self.reads, self.n = 0, n

    @property
    def requested(self):
        self.reads += 1
        return self.reads >= self.n

    @requested.setter
    def requested(self, value):
        pass


@pytest.mark.parametrize("kind", ["denoising", "vae", "conv"])
def test_a_resume_mid_epoch_on_two_threads_gives_the_bits_of_a_run_that_never_stopped(kind, tmp_path):
    straight = train(kind, 2, epochs=2)
    model, optimizer, history = train(kind, 2, epochs=2, stop=StopAfterReads(1 + 4 + 1 + 1 + 2))  # epoch 2, batch 2
    assert history.interrupted and len(history) == 1 and history.unfinished["batches"] == 2
    checkpoint.save(tmp_path / "model.npz", model, optimizer, history)
    saved = checkpoint.load(tmp_path / "model.npz")
    resumed = train(kind, 2, epochs=1, history=saved.history, model=saved.model, optimizer=saved.optimizer)
    assert_same_bits(state(*straight[:2]), state(*resumed[:2]))


@pytest.mark.parametrize("kind", KINDS)
def test_one_thread_gives_the_bits_of_train_step_itself(kind):
    build, loss_class, labels = KINDS[kind]
    x, y = data(labels)
    model, optimizer, _ = train(kind, 1, epochs=1, shuffle=False)
    by_hand = build()
    loss, hand_optimizer = loss_class(), (FastAdam if kind.endswith("-fast") else Adam)(by_hand.parameters(), lr=1e-2)
    by_hand.train()
    loss.start_epoch(0)
    for start in range(0, len(x), 20):
        train_step(by_hand, loss, hand_optimizer, x[start:start + 20], None if y is None else y[start:start + 20])
    assert_same_bits(state(model, optimizer), state(by_hand, hand_optimizer))


def split_gradients(model, loss, x, y, threads: int) -> list[numpy.ndarray]:
    """The gradient of one batch split over ``threads``."""
    model.train()
    parallel = DataParallel(model, loss, Adam(model.parameters()), threads)
    try:
        parallel.loss.forward(parallel.model.forward(x), x if y is None else y)
        parallel.model.backward(parallel.loss.backward())
    finally:
        parallel.close()
    return [p.grad.copy() for p in model.parameters()]


def unsplit_gradients(model, loss, x, y) -> list[numpy.ndarray]:
    model.train()
    out = model.forward(x)
    loss.forward(out, x if y is None else y)
    model.backward(loss.backward())
    return [p.grad.copy() for p in model.parameters()]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("threads", [2, 3])
def test_the_split_gradient_is_the_batch_gradient_in_float64(kind, threads):
    """The loss is a mean over samples: the share-weighted sum of the parts' gradients is the batch's gradient (to
    float64 rounding), for parts of unequal sizes (19 samples in 2 or 3 parts)."""
    build, loss_class, labels = KINDS[kind]
    x, y = data(labels, n=19)
    whole, split = build().to(dtype=numpy.float64), build().to(dtype=numpy.float64)
    x = x.astype(numpy.float64)
    expected = unsplit_gradients(whole, loss_class(), x, y)
    got = split_gradients(split, loss_class(), x, y, threads)
    for a, b in zip(expected, got):
        numpy.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * max(1.0, float(numpy.abs(a).max())))


@pytest.mark.parametrize("kind", KINDS)
def test_two_threads_train_within_float32_rounding_of_one(kind):
    one = train(kind, 1, epochs=1)
    two = train(kind, 2, epochs=1)
    for a, b in zip(state(*one[:2])[:len(one[0].parameters())], state(*two[:2])):
        numpy.testing.assert_allclose(b, a, rtol=2e-3, atol=2e-4)
    assert abs(one[2]["loss"][0] - two[2]["loss"][0]) <= 1e-5 * abs(one[2]["loss"][0])


def test_a_different_thread_count_changes_only_the_last_bits():
    """The check above is not trivially true: one and two threads do give other bits."""
    one, two = train("dense", 1, epochs=1), train("dense", 2, epochs=1)
    assert any(not numpy.array_equal(a, b) for a, b in zip(state(*one[:2]), state(*two[:2])))


def test_the_noise_and_eps_are_drawn_once_per_batch_from_the_model_seed():
    for kind, counter in (("denoising", "noisy_batches"), ("vae", "sampled_batches")):
        model, _, _ = train(kind, 2, epochs=2)
        assert getattr(model, counter) == 2 * 4  # 72 samples in batches of 20: 4 a epoch, split or not


@pytest.mark.parametrize("n, parts, expected", [(20, 2, [(0, 10), (10, 20)]), (7, 3, [(0, 3), (3, 5), (5, 7)]),
                                                (2, 4, [(0, 1), (1, 2)])])
def test_parts_cover_the_batch_in_order(n, parts, expected):
    assert part_bounds(n, parts) == expected


# --------------------------------------------------------------------------------------------------------------------
# A part that fails


class PartLoss(MSELoss):
    """MSE whose copies know the part they compute: the split copies the loss once per part, in part order; the
    original's ``part`` is None. ``calls`` counts each copy's calls (one a batch)."""

    part = None

    def __init__(self):
        super().__init__()
        self.copies, self.calls = 0, 0

    def __deepcopy__(self, memo):
        twin = copy.copy(self)
        twin.part, self.copies = self.copies, self.copies + 1
        return twin

    def forward(self, pred, target):
        self.calls += 1
        return self.on_call(super().forward(pred, target))

    def on_call(self, value):
        return value


def test_an_error_in_a_part_stops_the_step_before_any_update_and_ends_the_threads():
    class FailInPart1(PartLoss):
        def on_call(self, value):
            if self.part == 1 and self.calls == 6:
                raise ZeroDivisionError("in a part")
            return value

    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=1)
    optimizer = Adam(model.parameters())
    threads_before = threading.active_count()
    with pytest.raises(ZeroDivisionError, match="in a part"):
        fit(model, FailInPart1(), optimizer, data(False)[0], epochs=3, batch_size=20, progress=False, threads=2)
    assert optimizer.steps == 5  # the four batches of epoch 1 and the first of epoch 2; the sixth never stepped
    assert threading.active_count() == threads_before


def test_a_nan_in_one_part_is_a_diverged_loss_and_goes_back_to_the_epoch_before():
    class NaNInPart1(PartLoss):
        def on_call(self, value):
            return value * numpy.float32("nan") if self.part == 1 and self.calls == 6 else value

    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=1)
    optimizer = Adam(model.parameters())
    after_epoch_1 = []
    with pytest.raises(TrainingDiverged, match=r"the loss became nan in epoch 2, batch 2; the model is back at the "
                                               r"end of epoch 1"):
        fit(model, NaNInPart1(), optimizer, data(False)[0], epochs=3, batch_size=20, progress=False, threads=2,
            on_epoch_end=lambda epoch, logs: after_epoch_1.append(state(model, optimizer)))
    assert optimizer.steps == 4
    assert_same_bits(state(model, optimizer), after_epoch_1[0])


def test_ctrl_c_pressed_while_a_part_runs_finishes_the_batch_and_stops():
    class CtrlCInPart1(PartLoss):
        def on_call(self, value):
            if self.part == 1 and self.calls == 6:
                os.kill(os.getpid(), signal.SIGINT)
            return value

    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=1)
    optimizer = Adam(model.parameters())
    handler = signal.getsignal(signal.SIGINT)
    history = fit(model, CtrlCInPart1(), optimizer, data(False)[0], epochs=3, batch_size=20, progress=False,
                  threads=2)
    assert history.interrupted and optimizer.steps == 6 and len(history) == 1
    assert history.unfinished["batches"] == 2
    assert signal.getsignal(signal.SIGINT) is handler


def test_every_part_runs_once_whichever_thread_takes_it():
    from scratchae.engine.parallel import WorkerPool

    pool = WorkerPool(3)
    try:
        for parts in (1, 2, 3, 7):
            seen = []
            pool.run(seen.append, parts)
            assert sorted(seen) == list(range(parts))
    finally:
        pool.close()


@pytest.mark.parametrize("make", [lambda p: Adam(p, lr=1e-2, weight_decay=1e-3),
                                  lambda p: SGD(p, lr=0.1, momentum=0.9)])
def test_the_optimizer_step_split_by_parameter_gives_the_bits_of_the_whole_step(make):
    models = [builders.deep_autoencoder(4, input_dim=64, seed=3) for _ in range(2)]
    rng = numpy.random.default_rng(0)
    grads = [rng.standard_normal(p.shape).astype(numpy.float32) for p in models[0].parameters()]
    whole, split = make(models[0].parameters()), make(models[1].parameters())
    parallel = DataParallel(models[1], MSELoss(), split, 3)
    try:
        for _ in range(3):
            for model in models:
                for parameter, grad in zip(model.parameters(), grads):
                    parameter.grad = grad.copy()
            whole.step()
            parallel.optimizer.step()
    finally:
        parallel.close()
    assert split.steps == whole.steps == 3
    assert_same_bits([p.data for p in models[0].parameters()], [p.data for p in models[1].parameters()])


def test_an_optimizer_with_a_step_of_its_own_takes_it_whole():
    class Counted(Adam):
        taken = 0

        def step(self):
            self.taken += 1
            super().step()

    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=1)
    optimizer = Counted(model.parameters())
    fit(model, MSELoss(), optimizer, data(False)[0], epochs=1, batch_size=20, progress=False, threads=2)
    assert optimizer.taken == 4 and optimizer.steps == 4


def test_a_layer_whose_forward_was_replaced_on_the_object_trains_on_one_thread():
    """A learner's spy on a layer sees every whole batch: the replicas would call the spy, which runs the model's
    own layer, so such a model is not split."""
    model = builders.simple_autoencoder(4, hidden_dim=16, input_dim=64, seed=1)
    seen, forward = [], model.encoder.layers[0].forward
    model.encoder.layers[0].forward = lambda x: seen.append(len(x)) or forward(x)
    fit(model, MSELoss(), Adam(model.parameters()), data(False)[0], epochs=1, batch_size=20, progress=False,
        threads=2)
    assert seen == [20, 20, 20, 12]


def test_by_default_a_model_with_convolutions_trains_on_every_core_and_a_dense_one_on_one(monkeypatch):
    from scratchae import threads
    from scratchae.training_run import threads_for

    monkeypatch.setattr(threads, "_chosen", None)
    monkeypatch.setattr(threads, "available_cores", lambda: 4)
    dense, conv = KINDS["dense"][0](), KINDS["conv"][0]()
    assert threads_for(conv) == 4 and threads_for(dense) == 1
    assert threads_for(dense, 3) == 3 and threads_for(conv, 1) == 1  # a count given is the count used
    monkeypatch.setattr(threads, "_chosen", 2)  # --threads 2
    assert threads_for(dense) == 2 and threads_for(conv) == 2
    with pytest.raises(ValueError, match="threads"):
        threads_for(dense, 0)
