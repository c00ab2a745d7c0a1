# ---
# jupyter:
#   jupytext:
#     formats: py:percent
# ---

# %% [markdown]
# # Two floors: the lesson and the engine
#
# Every layer of scratchae exists twice. The **lesson** (`scratchae/conv.py`, `layers.py`, `optim.py`) is the
# simplest correct code: `Conv2D.forward` lines up each output pixel's window with one strided slice per kernel
# position (`im2col`), multiplies once, and its backward adds each window's share back (`col2im`), which is the
# convolution of the gradient with the flipped kernel. That is what a notebook builds, and what a debugger shows
# when you step into `model.forward`. The **engine** (`scratchae/engine/`) computes the very same sums with fewer
# copies: images stored as one long row, strides as phases, the product first when a layer has fewer output than
# input channels, blocks of samples that stay in the processor's cache. `builders.conv_autoencoder(fast=True)`
# builds it; the command, the demos and the benchmarks train with it.
#
# This chapter runs both on the same batch: the same numbers, and the time each takes.

# %%
import copy
import time

import numpy

from scratchae import builders, plots
from scratchae.backend import to_numpy
from scratchae.demos._common import Demo
from scratchae.engine.forms import fast
from scratchae.i18n import N_, format_text as _f

demo = Demo.start("two_floors")
dataset = demo.load_data()
BATCH = 128
x = demo.to_device(dataset.x_train[:BATCH])  # one batch of 128 digits, flat rows of pixels (784 for MNIST)

# %% [markdown]
# ## The same weights, the same numbers
#
# The conv autoencoder of the convolutional chapter, built once with the lesson's layers; a deep copy of it is switched to
# the engine's forms (`fast` swaps each layer's class and keeps its weights). Both encode the same batch.

# %%
lesson_model = builders.conv_autoencoder(image_shape=(1, *dataset.image_shape), seed=demo.seed).to(demo.device)
engine_model = fast(copy.deepcopy(lesson_model))
for model in (lesson_model, engine_model):
    print(f"{'engine' if model is engine_model else 'lesson'}: "
          + ", ".join(type(layer).__name__ for layer in model.encoder.layers))
codes = {name: to_numpy(model.encode(x)) for name, model in (("lesson", lesson_model), ("engine", engine_model))}
for name, code in codes.items():  # each code is (8, 4, 4) for MNIST: 128 numbers a digit; its first six, 5 decimals
    print(f"{name} code of the first digit: {numpy.array2string(code.reshape(len(code), -1)[0, :6], precision=5)}")
largest = float(numpy.max(numpy.abs(codes["lesson"] - codes["engine"])))
print(f"largest difference over the batch's {codes['lesson'].size:,} code values: {largest:.1e}")
demo.record(_f("same numbers"), largest_code_difference=largest)

# %% [markdown]
# ## What each floor costs
#
# Each convolution of the encoder and the decoder, its forward and its backward pass on the batch, timed on both
# floors (the best of a few repetitions). The lesson copies every input pixel once per kernel position and keeps
# the copies; the engine copies on the side with fewer channels, one long run per kernel position.

# %%
REPEATS = 2 if demo.quick else 5


def best_time(function) -> float:
    """The shortest of REPEATS runs of ``function()``, in milliseconds."""
    times = []
    for _ in range(REPEATS):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return 1000 * min(times)


def layer_times(model) -> dict[str, dict[str, float]]:
    """Forward and backward time of each convolution of ``model``, on the inputs it sees in the forward pass."""
    rows, out = {}, x
    for part_name in ("encoder", "decoder"):
        for layer in getattr(model, part_name).layers:
            if type(layer).__name__.endswith("Conv2D"):
                y = layer.forward(out)
                dy = numpy.ones_like(y) if isinstance(y, numpy.ndarray) else y * 0 + 1
                name = _f("{part} conv {inputs}->{outputs}", part=part_name, inputs=layer.in_channels,
                          outputs=layer.out_channels)
                rows[name] = {"forward": best_time(lambda layer=layer, out=out: layer.forward(out)),
                              "backward": best_time(lambda layer=layer, dy=dy: layer.backward(dy))}
            out = layer.forward(out)
    return rows


#: Each floor's column heading, translated where the table is drawn: "{way}" is forward or backward.
COLUMNS = {"lesson": N_("lesson {way}"), "engine": N_("engine {way}")}

times = {floor: layer_times(model) for floor, model in (("lesson", lesson_model), ("engine", engine_model))}
table = {name: {_f(COLUMNS[floor], way=way): times[floor][name][way] for floor in times
                for way in ("forward", "backward")}
         for name in times["lesson"]}  # one row a convolution: the lesson's times, then the engine's
total = {floor: sum(row["forward"] + row["backward"] for row in rows.values()) for floor, rows in times.items()}
print(f"all convolutions, forward and backward: lesson {total['lesson']:.1f} ms, engine {total['engine']:.1f} ms "
      f"({total['lesson'] / total['engine']:.1f} times as long)")
demo.record(_f("time of the convolutions"), lesson_ms=round(total["lesson"], 1), engine_ms=round(total["engine"], 1))
demo.save(plots.loss_table(table, title=_f("Time of each convolution on a batch of {n} (ms)", n=BATCH), digits=1),
          "27_two_floors.png",
          _f("The conv autoencoder's convolutions on one batch of {n} digits, forward and backward, on each floor: "
             "{lesson:.1f} ms in all for the lesson, {engine:.1f} ms for the engine, with codes equal to "
             "{largest:.0e}. The lesson is the code to read; the engine is the code to train with.",
             n=BATCH, lesson=total["lesson"], engine=total["engine"], largest=largest))

# %%
demo.finish()
