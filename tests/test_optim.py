"""Optimizers: Adam and SGD steps computed by hand from the formulas, weight decay as torch.optim.Adam applies it,
state per parameter, float32 kept through a whole training step, and bad hyperparameters."""

from __future__ import annotations

import math

import numpy
import pytest

from scratchae import builders
from scratchae.layers import Parameter
from scratchae.losses import BCELoss
from scratchae.optim import SGD, Adam

F32, F64 = numpy.float32, numpy.float64


def parameter(values, dtype=F64, name="w") -> Parameter:
    return Parameter(numpy.array(values, dtype=dtype), name)


def take_step(optimizer, param, grad):
    param.grad = numpy.array(grad, dtype=param.data.dtype)
    optimizer.step()


# ---------------------------------------------------------------------------------------------------- Adam


def test_adam_first_and_second_step_by_hand():
    lr, beta1, beta2, eps = 0.1, 0.9, 0.999, 1e-8
    w = parameter([1.0, -2.0])
    adam = Adam([w], lr=lr, betas=(beta1, beta2), eps=eps)

    # step 1, gradients 0.5 and -4: m = 0.1 g, v = 0.001 g^2; the bias corrections undo both factors exactly
    take_step(adam, w, [0.5, -4.0])
    m1 = [0.1 * 0.5, 0.1 * -4.0]                           # 0.05, -0.4
    v1 = [0.001 * 0.25, 0.001 * 16.0]                      # 0.00025, 0.016
    w1 = [1.0 - 0.1 * 0.5 / (0.5 + eps),                   # m_hat / (sqrt(v_hat) + eps) = g / (|g| + eps)
          -2.0 - 0.1 * -4.0 / (4.0 + eps)]
    numpy.testing.assert_allclose(adam.m[0], m1, rtol=1e-14)
    numpy.testing.assert_allclose(adam.v[0], v1, rtol=1e-14)
    numpy.testing.assert_allclose(w.data, w1, rtol=1e-14)
    assert w.data[0] == pytest.approx(0.9000000020)  # the size of a first Adam step is lr, whatever the gradient

    # step 2, gradients -0.25 and -4
    take_step(adam, w, [-0.25, -4.0])
    m2 = [0.9 * 0.05 + 0.1 * -0.25,                        # 0.02
          0.9 * -0.4 + 0.1 * -4.0]                         # -0.76
    v2 = [0.999 * 0.00025 + 0.001 * 0.0625,                # 0.00031225
          0.999 * 0.016 + 0.001 * 16.0]                    # 0.031984
    m_hat = [m2[0] / (1 - 0.9**2), m2[1] / (1 - 0.9**2)]  # divided by 0.19
    v_hat = [v2[0] / (1 - 0.999**2), v2[1] / (1 - 0.999**2)]  # divided by 0.001999
    w2 = [w1[0] - 0.1 * m_hat[0] / (math.sqrt(v_hat[0]) + eps),
          w1[1] - 0.1 * m_hat[1] / (math.sqrt(v_hat[1]) + eps)]
    numpy.testing.assert_allclose(adam.m[0], m2, rtol=1e-13)
    numpy.testing.assert_allclose(adam.v[0], v2, rtol=1e-13)
    numpy.testing.assert_allclose(w.data, w2, rtol=1e-13)
    assert w.data[0] == pytest.approx(0.9000000020 - 0.1 * (0.02 / 0.19) / math.sqrt(0.00031225 / 0.001999), rel=1e-9)
    assert adam.steps == 2


def test_adam_weight_decay_is_added_to_the_gradient_before_the_moments():
    lr, wd, eps = 0.01, 0.1, 1e-8
    w = parameter([2.0])
    adam = Adam([w], lr=lr, weight_decay=wd, eps=eps)

    take_step(adam, w, [0.5])
    g1 = 0.5 + wd * 2.0                                    # 0.7: torch.optim.Adam's L2 term, g + wd * theta
    assert adam.m[0][0] == pytest.approx(0.1 * g1, rel=1e-14)
    assert adam.v[0][0] == pytest.approx(0.001 * g1 * g1, rel=1e-14)
    w1 = 2.0 - lr * g1 / (g1 + eps)
    assert w.data[0] == pytest.approx(w1, rel=1e-14)

    take_step(adam, w, [-0.3])
    g2 = -0.3 + wd * w1                                    # the decay uses the current parameter
    m2 = 0.9 * 0.1 * g1 + 0.1 * g2
    v2 = 0.999 * 0.001 * g1 * g1 + 0.001 * g2 * g2
    w2 = w1 - lr * (m2 / (1 - 0.9**2)) / (math.sqrt(v2 / (1 - 0.999**2)) + eps)
    assert adam.m[0][0] == pytest.approx(m2, rel=1e-13)
    assert w.data[0] == pytest.approx(w2, rel=1e-13)

    # not decoupled (AdamW): that would shrink theta after the Adam step instead
    m2_plain = 0.9 * 0.1 * 0.5 + 0.1 * -0.3
    v2_plain = 0.999 * 0.001 * 0.25 + 0.001 * 0.09
    w1_adamw = 2.0 - lr * 0.5 / (0.5 + eps) - lr * wd * 2.0
    w2_adamw = w1_adamw - lr * (m2_plain / 0.19) / (math.sqrt(v2_plain / 0.001999) + eps) - lr * wd * w1_adamw
    assert abs(w.data[0] - w2_adamw) > 1e-4


def test_adam_without_weight_decay_ignores_the_parameter_value():
    low, high = parameter([0.0]), parameter([100.0])
    adam = Adam([low, high], lr=0.01)
    low.grad, high.grad = numpy.array([0.3]), numpy.array([0.3])
    adam.step()
    assert 0.0 - low.data[0] == pytest.approx(100.0 - high.data[0], rel=1e-12)


def test_adam_state_is_never_shared_between_parameters_of_equal_shape():
    a, b = parameter([1.0, 1.0], name="b"), parameter([1.0, 1.0], name="b")  # same shape, same name
    adam = Adam([a, b], lr=0.1)
    a.grad, b.grad = numpy.array([1.0, 2.0]), numpy.array([-3.0, 0.5])
    adam.step()
    a.grad, b.grad = numpy.array([0.5, 0.5]), numpy.array([0.5, 0.5])
    adam.step()
    assert adam.m[0] is not adam.m[1] and adam.v[0] is not adam.v[1]
    assert not numpy.array_equal(adam.m[0], adam.m[1])
    numpy.testing.assert_allclose(adam.m[0], [0.9 * 0.1 * 1.0 + 0.05, 0.9 * 0.1 * 2.0 + 0.05], rtol=1e-14)
    numpy.testing.assert_allclose(adam.m[1], [0.9 * 0.1 * -3.0 + 0.05, 0.9 * 0.1 * 0.5 + 0.05], rtol=1e-14)

    # each parameter moves exactly as it would under an optimizer of its own
    for param, grads in [(a, ([1.0, 2.0], [0.5, 0.5])), (b, ([-3.0, 0.5], [0.5, 0.5]))]:
        alone = parameter([1.0, 1.0])
        solo = Adam([alone], lr=0.1)
        for grad in grads:
            take_step(solo, alone, grad)
        numpy.testing.assert_array_equal(param.data, alone.data)


@pytest.mark.parametrize("dtype", [F32, F64])
@pytest.mark.parametrize("make", [lambda ps: Adam(ps), lambda ps: SGD(ps, lr=0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_state_is_created_on_the_first_step_in_the_parameter_dtype(dtype, make):
    w = parameter([[1.0, 2.0], [3.0, 4.0]], dtype=dtype)
    optimizer = make([w])
    state = optimizer.state_arrays()
    assert state and all(value is None for values in state.values() for value in values)
    take_step(optimizer, w, [[0.1, 0.2], [0.3, 0.4]])
    for values in optimizer.state_arrays().values():
        (array,) = values
        assert isinstance(array, numpy.ndarray)
        assert array.dtype == dtype and array.shape == (2, 2)
        assert not numpy.shares_memory(array, w.data) and not numpy.shares_memory(array, w.grad)
    assert w.data.dtype == dtype


@pytest.mark.parametrize("make", [lambda ps: Adam(ps), lambda ps: SGD(ps, lr=0.1),
                                  lambda ps: SGD(ps, lr=0.1, momentum=0.5)], ids=["adam", "sgd", "sgd-momentum"])
def test_step_updates_in_place_and_keeps_the_gradient(make):
    w = parameter([1.0, 2.0])
    array = w.data
    optimizer = make([w])
    take_step(optimizer, w, [0.5, 0.5])
    grad = w.grad.copy()
    assert w.data is array
    assert not numpy.array_equal(array, [1.0, 2.0])
    numpy.testing.assert_array_equal(w.grad, grad)


# ---------------------------------------------------------------------------------------------------- SGD


def test_sgd_without_momentum_by_hand():
    w = parameter([1.0, -1.0])
    sgd = SGD([w], lr=0.1)
    take_step(sgd, w, [0.5, -2.0])
    numpy.testing.assert_allclose(w.data, [1.0 - 0.1 * 0.5, -1.0 + 0.1 * 2.0], rtol=1e-15)  # 0.95, -0.8
    take_step(sgd, w, [0.5, -2.0])
    numpy.testing.assert_allclose(w.data, [0.9, -0.6], rtol=1e-14)  # no memory of the previous step
    assert sgd.state_arrays() == {}


def test_sgd_with_momentum_by_hand():
    lr, mu = 0.1, 0.9
    w = parameter([1.0])
    sgd = SGD([w], lr=lr, momentum=mu)
    take_step(sgd, w, [0.5])
    v1 = 0.5                                               # torch.optim.SGD: the first velocity is the gradient
    w1 = 1.0 - lr * v1                                     # 0.95
    assert w.data[0] == pytest.approx(w1, rel=1e-15)
    take_step(sgd, w, [-0.2])
    v2 = mu * v1 + -0.2                                    # 0.25
    w2 = w1 - lr * v2                                      # 0.925
    assert sgd.velocity[0][0] == pytest.approx(v2, rel=1e-14)
    assert w.data[0] == pytest.approx(w2, rel=1e-14)
    take_step(sgd, w, [0.0])
    v3 = mu * v2                                           # 0.225: momentum carries on without a gradient
    assert w.data[0] == pytest.approx(w2 - lr * v3, rel=1e-14)
    assert w.data[0] == pytest.approx(0.9025, rel=1e-14)


# ---------------------------------------------------------------------------------------------------- float32


@pytest.mark.parametrize("make", [lambda ps: Adam(ps, lr=1e-3, weight_decay=1e-4),
                                  lambda ps: SGD(ps, lr=0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_float32_stays_float32_through_a_full_training_step(rng, make):
    model = builders.simple_autoencoder(latent_dim=4, input_dim=20, hidden_dim=8)
    optimizer = make(model.parameters())
    loss = BCELoss()
    x = rng.random((6, 20), dtype=F32)
    for _ in range(2):
        pred = model.forward(x)
        assert pred.dtype == F32
        value = loss.forward(pred, x)
        assert value.dtype == F32
        dpred = loss.backward()
        assert dpred.dtype == F32
        model.backward(dpred)
        optimizer.step()
    for name, param in model.named_parameters():
        assert param.data.dtype == F32, name
        assert param.grad.dtype == F32, name
    for state_name, arrays in optimizer.state_arrays().items():
        assert len(arrays) == len(model.parameters())
        assert all(array.dtype == F32 for array in arrays), state_name
    assert model.encode(x).dtype == F32


# ---------------------------------------------------------------------------------------------------- bad input


NAN, INF = float("nan"), float("inf")
BAD_HYPERPARAMETERS = [
    (Adam, {"lr": 0}, "lr must be a finite number > 0, got 0"),
    (Adam, {"lr": -1e-3}, "lr must be a finite number > 0, got -0.001"),
    (SGD, {"lr": -1}, "lr must be a finite number > 0, got -1"),
    (SGD, {"lr": 0.0}, "lr must be a finite number > 0, got 0.0"),
    (Adam, {"lr": NAN}, "lr must be a finite number > 0, got nan"),
    (SGD, {"lr": NAN}, "lr must be a finite number > 0, got nan"),
    (Adam, {"lr": INF}, "lr must be a finite number > 0, got inf"),
    (Adam, {"lr": "0.1"}, "lr must be a finite number > 0, got '0.1'"),
    (Adam, {"betas": (1.0, 0.999)}, r"betas\[0\] must be a finite number in \[0, 1\), got 1.0"),
    (Adam, {"betas": (-0.1, 0.999)}, r"betas\[0\] must be a finite number in \[0, 1\), got -0.1"),
    (Adam, {"betas": (0.9, 1.0)}, r"betas\[1\] must be a finite number in \[0, 1\), got 1.0"),
    (Adam, {"betas": (0.9, NAN)}, r"betas\[1\] must be a finite number in \[0, 1\), got nan"),
    (Adam, {"eps": 0.0}, "eps must be a finite number > 0, got 0.0"),
    (Adam, {"weight_decay": -0.1}, "weight_decay must be a finite number >= 0, got -0.1"),
    (Adam, {"weight_decay": NAN}, "weight_decay must be .*got nan"),
    (SGD, {"lr": 0.1, "momentum": 1.0}, r"momentum must be a finite number in \[0, 1\), got 1.0"),
    (SGD, {"lr": 0.1, "momentum": -0.5}, r"momentum must be a finite number in \[0, 1\), got -0.5"),
    (SGD, {"lr": 0.1, "momentum": NAN}, r"momentum must be a finite number in \[0, 1\), got nan"),
]


@pytest.mark.parametrize("optimizer_class, options, message", BAD_HYPERPARAMETERS,
                         ids=[f"{cls.__name__}-{options}" for cls, options, _ in BAD_HYPERPARAMETERS])
def test_bad_hyperparameters(optimizer_class, options, message):
    with pytest.raises(ValueError, match=message):
        optimizer_class([parameter([1.0])], **options)


@pytest.mark.parametrize("make", [Adam, lambda ps: SGD(ps, lr=0.1)], ids=["adam", "sgd"])
def test_empty_parameter_list(make):
    with pytest.raises(ValueError, match="got an empty parameter list"):
        make([])


@pytest.mark.parametrize("make", [Adam, lambda ps: SGD(ps, lr=0.1)], ids=["adam", "sgd"])
def test_step_before_backward(make):
    w = parameter([1.0], name="W")
    optimizer = make([w])
    with pytest.raises(RuntimeError, match=r"no gradient for parameter\(s\) \['W'\]; call backward before step"):
        optimizer.step()
    numpy.testing.assert_array_equal(w.data, [1.0])
    assert optimizer.steps == 0


def test_a_missing_gradient_is_named_by_its_place_in_the_model():
    model = builders.simple_autoencoder(input_dim=8, latent_dim=2, hidden_dim=4)
    optimizer = Adam(model.parameters())
    for parameter in model.encoder.parameters():
        parameter.grad = numpy.zeros_like(parameter.data)
    with pytest.raises(RuntimeError, match=r"no gradient for parameter\(s\) \['decoder.0.W', 'decoder.0.b', "
                                           r"'decoder.2.W', 'decoder.2.b'\]"):
        optimizer.step()


@pytest.mark.parametrize("make", [Adam, lambda ps: SGD(ps, lr=0.1, momentum=0.9)], ids=["adam", "sgd"])
def test_state_follows_a_model_cast_after_training_and_the_checkpoint_loads(make, tmp_path, rng):
    from scratchae import checkpoint
    from scratchae.losses import MSELoss
    from scratchae.training import fit

    model = builders.simple_autoencoder(input_dim=8, latent_dim=2, hidden_dim=4)
    optimizer = make(model.parameters())
    x = rng.uniform(0.0, 1.0, (16, 8)).astype(F32)
    fit(model, MSELoss(), optimizer, x, epochs=1, batch_size=8, progress=False)
    model.to(dtype=F64)  # the state the optimizer holds is float32
    checkpoint.save(tmp_path / "f64.npz", model, optimizer)
    loaded = checkpoint.load(tmp_path / "f64.npz")
    assert loaded.model.dtype == F64
    assert all(array.dtype == F64 for arrays in loaded.optimizer.state_arrays().values() for array in arrays)
    fit(model, MSELoss(), optimizer, x.astype(F64), epochs=1, batch_size=8, progress=False)  # steps in float64
    assert all(array.dtype == F64 for arrays in optimizer.state_arrays().values() for array in arrays)
    assert model.dtype == F64
