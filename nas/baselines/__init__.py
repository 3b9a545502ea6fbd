"""The plain baselines a user would try first: logistic regression, an RBF SVM and k-NN.

`fit_baselines` fits them on a Dataset's train split within a time cap and scores them on its
validation (and test) split; a search's models should beat the best of them.
"""

from __future__ import annotations

from nas.baselines.costs import NAMES, estimate_seconds
from nas.baselines.fitting import best_baseline, fit_baselines
from nas.baselines.model import Baseline, BaselineModel, linear_module

__all__ = ["NAMES", "Baseline", "BaselineModel", "best_baseline", "estimate_seconds",
           "fit_baselines", "linear_module"]
