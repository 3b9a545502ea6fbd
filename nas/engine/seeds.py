"""The search's seeds: one master seed, the searcher's and the trials' derived from it.

`search`, `optimize` and `resume` must derive them alike, or a resume would diverge.
"""

from __future__ import annotations

import numpy as np


def seed_sequences(seed: int) -> tuple[np.random.SeedSequence, np.random.SeedSequence]:
    """The searcher's and the trials' seed sequences, children of the master seed."""
    searcher_seq, trial_seq = np.random.SeedSequence(seed).spawn(2)
    return searcher_seq, trial_seq


def trial_seed(trial_seq: np.random.SeedSequence, trial_id: int) -> int:
    """The seed trial `trial_id` trains with: child `trial_id` of the trials' sequence."""
    return int(np.random.SeedSequence(trial_seq.entropy,
                                      spawn_key=(*trial_seq.spawn_key, trial_id))
               .generate_state(1)[0])
