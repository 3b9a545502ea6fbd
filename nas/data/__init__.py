"""Classification datasets as standardised in-memory tensors: built-ins and the user's arrays.

Built-ins: `digits`, `mnist1d`, `synthetic` and those of `nas.data.synthetic` (`wine`,
`breast-cancer`, `shapes16`, `shapes28`, `templates16`, `mnist1d-hard`) work offline; `mnist`,
`fashion-mnist` and `cifar10` read torchvision's files from `root` (default
`~/.cache/nas/data`) or download them. A path loads the user's .npz or .csv file or folder
of images (`nas.data.files`).
"""

from __future__ import annotations

# Importing the loader modules registers them, offline ones first: `available` keeps that order.
from nas.data import builtin, files, synthetic, vision  # noqa: F401
from nas.data.arrays import from_arrays
from nas.data.dataset import Dataset, available, describe, load
from nas.data.vision import DEFAULT_ROOT

__all__ = ["DEFAULT_ROOT", "Dataset", "available", "describe", "from_arrays", "load"]
