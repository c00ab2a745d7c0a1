"""The demos: one percent-format script (``# %%`` cells) per chapter of the two notebooks.

Each runs as a script (``python demos/simple_autoencoder.py --quick``) and opens as a notebook in Jupyter (with
jupytext) or VS Code. ``scratchae demo`` runs them all and builds a gallery page of their figures. Installed, this
folder is the package ``scratchae.demos``.
"""
