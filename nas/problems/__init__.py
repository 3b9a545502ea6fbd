"""Multi-fidelity test problems that searchers are tested and benchmarked on (lower loss is better).

`mf-branin` and `mf-hartmann6`: the multi-fidelity Branin and Hartmann6 of Kandasamy et al. 2017
(BOCA, ICML), noise-free; `counting-ones`: Falkner, Klein & Hutter 2018 (BOHB, ICML), noisy;
`mixed-10d`, `mixed-20d`: mixed spaces with conditions whose low budgets mislead;
`digits-mlp`, `digits-conv`, `mnist1d-mlp`: a residual MLP or residual conv cells trained on
scikit-learn digits or MNIST-1D through the project's trainer; `tab-mlp-digits`,
`tab-mlp-mnist1d`: the residual MLP's learning curves on those, recorded
(`nas.problems.tabular`); multi-objective ones with a known optimum hypervolume: `zdt1-mf`,
`zdt2-mf`, `dtlz2-mf`, `tab-mlp-digits-mo`, `tab-mlp-mnist1d-mo`
(`nas.problems.multiobjective`). Importing this module does not import torch; only evaluating
a training problem (or asking for its space) does.
"""

from nas.problems import (  # noqa: F401  (each registers its problems)
    mixed,
    multiobjective,
    synthetic,
    tabular,
    training,
)
from nas.problems.core import PROBLEMS, Problem, available, get

__all__ = ["PROBLEMS", "Problem", "available", "get"]
