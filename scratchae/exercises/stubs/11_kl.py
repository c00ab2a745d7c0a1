"""Exercise kl: the gradient of the VAE's KL term.

KL(N(mu, sigma^2) || N(0, I)) = -1/2 sum_j (1 + logvar_j - mu_j^2 - exp(logvar_j)) for one sample (Kingma & Welling,
appendix B), with logvar = log sigma^2; the loss averages it over the batch of N samples. Write ``backward``: return
dKL/dmu and dKL/dlogvar.

Check it with ``scratchae exercises check . kl``.
"""

import numpy


class KLDivergence:
    def forward(self, mu, logvar):
        """mu, logvar: (N, Z) -> a 0-d array: the KL term per sample, averaged over the batch."""
        self.cache = (mu, logvar)
        return -0.5 * numpy.sum(1.0 + logvar - mu * mu - numpy.exp(logvar)) / mu.shape[0]

    def backward(self):
        """-> (dKL/dmu, dKL/dlogvar), (N, Z) each, from the cached mu and logvar.

        Differentiate one term of the sum with respect to mu_nj, then with respect to logvar_nj; keep the -1/2 in
        front and the 1/N of the mean.
        """
        raise NotImplementedError("exercise kl: write KLDivergence.backward")
