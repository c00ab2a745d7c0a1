"""Exercise vae_sample: the backward pass of the VAE's sample (the reparameterisation trick).

The encoder gives mu and logvar = log sigma^2; the sample is z = mu + exp(logvar / 2) * eps, with eps ~ N(0, I) drawn
before and held fixed. Write ``gaussian_sample_backward``: given dz = dL/dz, return dL/dmu and dL/dlogvar.

Check it with ``scratchae exercises check . vae_sample``.
"""

import numpy


def gaussian_sample(mu, logvar, eps):
    """mu, logvar, eps: (N, Z) -> z: (N, Z)."""
    return mu + numpy.exp(0.5 * logvar) * eps


def gaussian_sample_backward(dz, logvar, eps):
    """dz: (N, Z) = dL/dz, logvar: (N, Z), eps: (N, Z) -> (dL/dmu, dL/dlogvar), (N, Z) each.

    z is elementwise: z_nj depends on mu_nj and logvar_nj only. Derive dz/dmu, then dz/dlogvar through
    sigma = exp(logvar / 2) (the chain rule through the division by 2 too), and multiply each by dz.
    """
    raise NotImplementedError("exercise vae_sample: write gaussian_sample_backward")
