"""The whole suite behind ``scratchae gradcheck``: every layer, every loss and whole models, in float64.

The convolutional layers and models are checked on both floors: the lesson's forms and the engine's
(:mod:`scratchae.engine`), each case named with its floor.

:func:`check_everything` returns one :class:`~scratchae.gradcheck.CheckedCase` per layer, loss or model, and
:func:`format_report` lays them out as the table the command prints.
"""

from __future__ import annotations

import copy

import numpy

from scratchae.builders import variational_autoencoder
from scratchae.engine.forms import fast
from scratchae.gradcheck import CheckedCase
from scratchae.layers import Dense, Identity, ReLU, Sequential, Sigmoid
from scratchae.losses import BCELoss, MSELoss, SoftmaxCrossEntropyLoss, VAELoss
from scratchae.models import Autoencoder, gaussian_sample, gaussian_sample_backward
from scratchae.numerical import (LAYER_TOLERANCE, MODEL_STEP, MODEL_TOLERANCE, GradientCheck, compare, layer_checks,
                                 loss_check, model_checks)

def off_kinks(x: numpy.ndarray, margin: float = 0.05) -> numpy.ndarray:
    """Move values away from 0, where ReLU has no derivative, so that ``x +- h`` never crosses the kink."""
    return x + numpy.where(x >= 0, margin, -margin)


def check_everything(seed: int = 0) -> list[CheckedCase]:
    """Check every layer, every loss and whole models against numerical gradients, in float64.

    Returns one :class:`CheckedCase` per layer, loss or model; :func:`format_report` lays them out as a table.
    """
    rng = numpy.random.default_rng(seed)
    return (_layer_cases(rng) + _conv_cases(rng) + _loss_cases(rng) + _model_cases(rng) + _vae_cases(rng)
            + _sparse_cases(rng) + _conv_model_cases(rng))


def _layer_cases(rng) -> list[CheckedCase]:
    f64 = numpy.float64
    x = off_kinks(rng.standard_normal((4, 7)))
    layers = (Dense(7, 5, rng=rng, dtype=f64), Dense(784, 128, rng=rng, dtype=f64), ReLU(), Sigmoid(), Identity(),
              Sequential([Dense(7, 6, rng=rng, dtype=f64), ReLU(), Dense(6, 3, rng=rng, dtype=f64)]))
    cases = []
    for layer in layers:
        # the 784-wide layer gets inputs of its own; its 100,352 weights are checked along random directions
        layer_input = off_kinks(rng.standard_normal((3, 784))) if getattr(layer, "in_features", 0) == 784 else x
        cases.append(CheckedCase(repr(layer).replace("\n", "").replace("  ", " "), LAYER_TOLERANCE,
                                 layer_checks(layer, layer_input, rng)))
    return cases


def _conv_cases(rng) -> list[CheckedCase]:
    """The convolutional layers where their gradients are easiest to get wrong: padding, stride 2, overlapping
    pooling windows, odd sizes (7 -> 4), output_padding. Pooled inputs are all 1e-3 or more apart, so that no window
    has a tie a step h could flip."""
    from scratchae.conv import Conv2D, ConvTranspose2D, Flatten, MaxPool2D, Reshape, UpSampling2D

    f64 = numpy.float64

    def apart(shape):
        size = int(numpy.prod(shape))
        return (rng.permutation(size) * 1e-2 + rng.uniform(0.0, 1e-3, size)).reshape(shape)

    layers = (("Conv2D 2->3 3x3 stride 2 'same' on 7x6", Conv2D(2, 3, 3, stride=2, rng=rng, dtype=f64),
               rng.standard_normal((2, 2, 7, 6))),
              ("Conv2D 4->2 2x3 padding 1 on 5x6", Conv2D(4, 2, (2, 3), padding=1, rng=rng, dtype=f64),
               rng.standard_normal((2, 4, 5, 6))),
              ("ConvTranspose2D 3->2 3x3 stride 2 output_padding 1",
               ConvTranspose2D(3, 2, 3, stride=2, padding=1, output_padding=1, rng=rng, dtype=f64),
               rng.standard_normal((2, 3, 4, 3))),
              ("MaxPool2D 2 'same' 7 -> 4", MaxPool2D(2, padding="same"), apart((2, 2, 7, 7))),
              ("MaxPool2D 3 stride 2 (overlapping windows)", MaxPool2D(3, stride=2), apart((2, 2, 7, 7))),
              ("UpSampling2D 2", UpSampling2D(2), rng.standard_normal((2, 2, 3, 4))),
              ("Flatten", Flatten(), rng.standard_normal((2, 2, 3, 3))),
              ("Reshape((2, 3, 3))", Reshape((2, 3, 3)), rng.standard_normal((2, 18))))
    cases = []
    for what, layer, x in layers:
        for parameter in layer.parameters():
            if parameter.name == "b":
                parameter.data = rng.standard_normal(parameter.shape)
        for floor, form in on_both_floors(layer):
            cases.append(CheckedCase(f"{floor}: {what}", LAYER_TOLERANCE, layer_checks(form, x, rng)))
    return cases


def on_both_floors(layer_or_model) -> list[tuple[str, object]]:
    """``[("lesson", it), ("engine", a copy of it in the engine's forms)]``: the same weights, the same numbers."""
    return [("lesson", layer_or_model), ("engine", fast(copy.deepcopy(layer_or_model)))]


def _loss_cases(rng) -> list[CheckedCase]:
    probabilities, targets = rng.uniform(0.05, 0.95, (4, 7)), rng.uniform(0.0, 1.0, (4, 7))
    labels = rng.integers(0, 7, size=4)
    return [CheckedCase("MSELoss", LAYER_TOLERANCE, [loss_check(MSELoss(), probabilities.copy(), targets)]),
            CheckedCase("BCELoss", LAYER_TOLERANCE, [loss_check(BCELoss(), probabilities.copy(), targets)]),
            CheckedCase("SoftmaxCrossEntropyLoss", LAYER_TOLERANCE,
                        [loss_check(SoftmaxCrossEntropyLoss(), rng.standard_normal((4, 7)), labels)])]


def _model_cases(rng) -> list[CheckedCase]:
    f64 = numpy.float64

    def stack(sizes, last):
        layers = []
        for n_in, n_out in zip(sizes[:-1], sizes[1:]):
            layers += [Dense(n_in, n_out, rng=rng, dtype=f64), ReLU()]
        layers[-1] = last
        return Sequential(layers)

    def draw():
        model = Autoencoder(stack([12, 8, 6, 4], ReLU()), stack([4, 6, 8, 12], Sigmoid()))
        return _biases_off_zero(model, rng), rng.uniform(0.0, 1.0, (5, 12))

    cases = []
    for loss in (MSELoss(), BCELoss()):
        model, images = _well_posed(draw, loss)
        cases.append(CheckedCase(f"autoencoder 12-8-6-4-6-8-12 + {type(loss).__name__}", MODEL_TOLERANCE,
                                 model_checks(model, loss, images, images, rng, h=MODEL_STEP)))
    return cases


def check_vae_loss(loss, x_hat, mu, logvar, target, **options) -> list[GradientCheck]:
    """Check ``VAELoss.backward()``: its gradient with respect to ``x_hat`` (the reconstruction term) and to ``mu``
    and ``logvar`` (the KL term), each against the numerical gradient of the scalar loss."""
    out = (x_hat, mu, logvar)
    loss.forward(out, target)
    analytic = loss.backward()

    def value(_):
        return loss.forward(out, target)

    return [compare(name, value, array, gradient, **options)
            for name, array, gradient in zip(("x_hat", "mu", "logvar"), out, analytic)]


def check_gaussian_sample(mu, logvar, eps, rng, **options) -> list[GradientCheck]:
    """Check the backward pass of the sample ``z = mu + exp(logvar / 2) * eps`` for a random upstream gradient."""
    dz = rng.standard_normal(mu.shape)
    dmu, dlogvar = gaussian_sample_backward(dz, logvar, eps)

    def z(_):
        return gaussian_sample(mu, logvar, eps)

    return [compare("mu", z, mu, dmu, dz, **options), compare("logvar", z, logvar, dlogvar, dz, **options)]


class WithFixedEps:
    """A variational autoencoder whose every forward pass uses the same ``eps``: a gradient check differentiates one
    function, and a fresh draw at each evaluation would change it."""

    def __init__(self, vae, eps):
        self.vae, self.eps = vae, eps

    def forward(self, x):
        return self.vae.forward(x, eps=self.eps)

    def backward(self, grads):
        self.vae.backward(grads)

    def parts(self):
        return self.vae.parts()

    def parameters(self):
        return self.vae.parameters()

    def named_parameters(self):
        return self.vae.named_parameters()


def _vae_cases(rng) -> list[CheckedCase]:
    n, pixels, latent = 5, 12, 3
    target = rng.uniform(0.0, 1.0, (n, pixels))
    cases = []
    for reconstruction in VAELoss.RECONSTRUCTIONS:
        x_hat, mu = rng.uniform(0.05, 0.95, (n, pixels)), rng.standard_normal((n, latent))
        logvar = 0.5 * rng.standard_normal((n, latent))
        cases.append(CheckedCase(f"VAELoss(reconstruction={reconstruction!r}, beta=0.7): reconstruction and KL",
                                 LAYER_TOLERANCE, check_vae_loss(VAELoss(reconstruction, beta=0.7), x_hat, mu, logvar,
                                                                 target)))
    mu, logvar, eps = (rng.standard_normal((n, latent)), 0.5 * rng.standard_normal((n, latent)),
                       rng.standard_normal((n, latent)))
    cases.append(CheckedCase("the sample z = mu + exp(logvar / 2) * eps", LAYER_TOLERANCE,
                             check_gaussian_sample(mu, logvar, eps, rng)))

    def draw():
        vae = variational_autoencoder(latent, hidden_dim=8, input_dim=pixels, seed=int(rng.integers(1 << 31)),
                                      dtype=numpy.float64)
        return WithFixedEps(_biases_off_zero(vae, rng).train(), rng.standard_normal((n, latent))), target

    for reconstruction in VAELoss.RECONSTRUCTIONS:
        loss = VAELoss(reconstruction)
        fixed, _ = _well_posed(draw, loss)
        cases.append(CheckedCase(f"VAE 12-8-(3, 3)-8-12 + VAELoss({reconstruction!r}), eps held fixed",
                                 MODEL_TOLERANCE, model_checks(fixed, loss, target, target, rng, h=MODEL_STEP)))
    return cases


def check_sparse_loss(loss, x_hat, h, target, **options) -> list[GradientCheck]:
    """Check ``SparseLoss.backward()``: its gradient with respect to ``x_hat`` (the reconstruction term) and to the
    code ``h`` (the L1 penalty), each against the numerical gradient of the scalar loss. Keep ``h`` away from 0,
    where |h| has no derivative."""
    out = (x_hat, h)
    loss.forward(out, target)
    analytic = loss.backward()

    def value(_):
        return loss.forward(out, target)

    return [compare(name, value, array, gradient, **options)
            for name, array, gradient in zip(("x_hat", "h"), out, analytic)]


def _sparse_cases(rng) -> list[CheckedCase]:
    """The L1 activity penalty: on a code of both signs (kept 0.05 or more from 0, the corner of |h|), then through
    whole sparse autoencoders, with a ReLU code (Chollet's) and a linear one (whose code takes both signs)."""
    from scratchae.sparse import SparseAutoencoder, SparseLoss

    n, pixels, latent, f64 = 5, 12, 4, numpy.float64
    target = rng.uniform(0.0, 1.0, (n, pixels))
    cases = []
    for reconstruction in SparseLoss.RECONSTRUCTIONS:
        x_hat, h = rng.uniform(0.05, 0.95, (n, pixels)), off_kinks(rng.standard_normal((n, latent)))
        cases.append(CheckedCase(f"SparseLoss(l1=0.3, {reconstruction!r}): reconstruction and L1 penalty",
                                 LAYER_TOLERANCE, check_sparse_loss(SparseLoss(0.3, reconstruction), x_hat, h,
                                                                    target)))

    def draw(code_activation):
        def draw_model():
            encoder = Sequential([Dense(pixels, 8, rng=rng, dtype=f64), ReLU(), Dense(8, latent, rng=rng, dtype=f64),
                                  code_activation()])
            decoder = Sequential([Dense(latent, pixels, rng=rng, dtype=f64), Sigmoid()])
            return _biases_off_zero(SparseAutoencoder(encoder, decoder, l1=0.05), rng), target
        return draw_model

    for what, activation in (("ReLU", ReLU), ("linear", Identity)):
        loss = SparseLoss(0.05, "bce")
        model, _ = _well_posed(draw(activation), loss, code_margin=1e-2)
        cases.append(CheckedCase(f"sparse autoencoder 12-8-4-12, {what} code + SparseLoss", MODEL_TOLERANCE,
                                 model_checks(model, loss, target, target, rng, h=MODEL_STEP)))
    return cases


def _conv_model_cases(rng) -> list[CheckedCase]:
    """The three convolutional models, small (two or three channels, 12 x 12 and 6 x 6 images) but with every layer
    and size rule of the full ones: the conv autoencoder's "same" pooling of 3 rows to 2 and its "valid" convolution,
    the denoiser (checked without noise: the noise has no gradient), and the VAE's stride-2 convolutions and
    transposed convolutions with and without output_padding. Max-pooling windows are drawn again until their two
    largest inputs are apart, as ReLU inputs are kept off their kink."""
    from scratchae.conv import MaxPool2D
    from scratchae.builders import conv_autoencoder, conv_denoising_autoencoder, conv_variational_autoencoder

    n, f64 = 3, numpy.float64
    # How far from a kink every value is kept (a ReLU input from 0, the largest input of a pooling window from the
    # next). These models have hundreds of pre-activations, and the margin of 1e-2 of the dense checks would rarely
    # be met by any draw; a step of MODEL_STEP moves each by about MODEL_STEP times an input below 1, a fifth of this.
    margin = 3e-4

    def pooling_gaps(model, x) -> list[float]:
        """For every max-pooling layer, the smallest gap between the largest input of a window and the next (the
        gradient jumps from one to the other where they cross). Windows side by side, as in these models."""
        gaps = []
        for part in model.parts().values():
            for layer in part.layers:
                if isinstance(layer, MaxPool2D):
                    k, (batch, channels, height, width) = layer.pool_size, x.shape
                    rows, cols = -(-height // k) * k, -(-width // k) * k
                    padded = numpy.full((batch, channels, rows, cols), -numpy.inf)
                    padded[:, :, :height, :width] = x
                    windows = padded.reshape(batch, channels, rows // k, k, cols // k, k).transpose(0, 1, 2, 4, 3, 5)
                    ranked = numpy.sort(windows.reshape(batch, channels, rows // k, cols // k, k * k), axis=-1)
                    gaps.append(float(numpy.min(ranked[..., -1] - ranked[..., -2])))
                x = layer.forward(x)
        return gaps

    def seed():
        return int(rng.integers(1 << 31))

    def images(side):
        return rng.uniform(0.0, 1.0, (n, side * side))

    def clear_of_ties(draw):
        def draw_clear():
            for _ in range(100):
                model, inputs = draw()
                if all(gap > margin for gap in pooling_gaps(model, inputs)):
                    return model, inputs
            raise RuntimeError("no draw in 100 gave max-pooling windows without near ties")
        return draw_clear

    autoencoders = (
        ("conv autoencoder (1, 12, 12), channels 2-3-2", clear_of_ties(lambda: (_biases_off_zero(conv_autoencoder(
            image_shape=(1, 12, 12), channels=(2, 3, 2), seed=seed(), dtype=f64), rng), images(12)))),
        ("conv denoising autoencoder (1, 8, 8), 2 channels, no noise", clear_of_ties(lambda: (_biases_off_zero(
            conv_denoising_autoencoder(image_shape=(1, 8, 8), channels=2, seed=seed(), dtype=f64), rng),
            images(8)))))
    cases = []
    for what, draw in autoencoders:
        loss = BCELoss()
        model, inputs = _well_posed(draw, loss, margin=margin)
        for floor, form in on_both_floors(model):
            cases.append(CheckedCase(f"{floor}: {what} + BCELoss", MODEL_TOLERANCE,
                                     model_checks(form, loss, inputs, inputs, rng, h=MODEL_STEP)))
    target = images(6)

    def draw_vae():
        vae = conv_variational_autoencoder(2, image_shape=(1, 6, 6), channels=(2, 3), hidden_dim=4, seed=seed(),
                                           dtype=f64)
        return WithFixedEps(_biases_off_zero(vae, rng).train(), rng.standard_normal((n, 2))), target

    loss = VAELoss("bce")
    fixed, _ = _well_posed(draw_vae, loss, margin=margin)
    for floor, form in on_both_floors(fixed):
        cases.append(CheckedCase(f"{floor}: conv VAE (1, 6, 6), channels 2-3, eps held fixed + VAELoss('bce')",
                                 MODEL_TOLERANCE, model_checks(form, loss, target, target, rng, h=MODEL_STEP)))
    return cases


def _biases_off_zero(model, rng):
    """Give every Dense layer a small random bias, away from zero.

    Biases start at zero, and a ReLU whose inputs are all zero (a dead unit before it) then sits exactly on its kink,
    where the centred difference sees one side only. Random biases move every pre-activation off the kink.
    """
    for name, parameter in model.named_parameters():
        if name.endswith(".b"):
            parameter.data = off_kinks(0.1 * rng.standard_normal(parameter.shape))
    return model


def _well_posed(draw, loss, margin: float = 1e-2, smallest_gradient: float = 1e-4, tries: int = 100,
                code_margin: float | None = None):
    """``draw()`` a (model, inputs) pair again until its gradients can be checked to the model tolerance.

    Two things make a draw unfit. A ReLU input within ``margin`` of 0: ReLU has no derivative there, and a numerical
    derivative taken across the kink is meaningless (a step of :data:`MODEL_STEP` moves every pre-activation far
    less than the margin). And a parameter that barely moves the loss: a centred difference of the loss is rounded
    to about 1e-16 of the loss divided by h, so a parameter whose largest gradient is below ``smallest_gradient``
    times the loss could not be checked to 1e-6 by any step. The inputs of an autoencoder are its targets.
    """
    for _ in range(tries):
        model, inputs = draw()
        out = model.forward(inputs)
        value = abs(float(loss.forward(out, inputs)))
        model.backward(loss.backward())
        relus = [layer for part in model.parts().values() for layer in part.layers if isinstance(layer, ReLU)]
        clear = all(float(numpy.min(numpy.abs(layer.x))) > margin for layer in relus)
        if code_margin is not None:
            code = numpy.abs(out[1])
            clear = clear and bool(numpy.all((code == 0.0) | (code > code_margin)))
        measurable = all(float(numpy.max(numpy.abs(parameter.grad))) >= smallest_gradient * value
                         for _, parameter in model.named_parameters())
        if clear and measurable:
            return model, inputs
    raise RuntimeError(f"no draw in {tries} gave a model whose gradients can be checked")


def format_report(cases: list[CheckedCase]) -> str:
    """A table with one row per check: what, parameter, largest relative error, method, pass or FAIL."""
    lines = [f"{'what':<58}{'parameter':<14}{'max rel error':>14}  {'method':<16}result"]
    failures = 0
    for case in cases:
        for check in case.checks:
            passed = check.passed(case.tolerance)
            failures += not passed
            lines.append(f"{case.what[:57]:<58}{check.name:<14}{check.error:>14.2e}  {check.method:<16}"
                         + ("pass" if passed else f"FAIL (> {case.tolerance:.0e})"))
            if not passed:
                lines.append(f"    {check}")
        for mistake in case.mistakes:
            failures += 1
            lines.append(f"{case.what[:57]:<58}{'protocol':<14}{'':>14}  {'':<16}FAIL")
            lines.append(f"    {mistake}")
    lines.append("all gradients match" if failures == 0 else f"{failures} gradient check(s) failed")
    return "\n".join(lines)
