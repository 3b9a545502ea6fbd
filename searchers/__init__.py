"""Search algorithms: ask/tell objects over a ConfigSpace space, found through one registry."""

from __future__ import annotations

from searchers.asha import ASHA
from searchers.base import ScheduledSearcher, Searcher
from searchers.bohb import BOHB, AsyncBOHB
from searchers.hyperband import Hyperband
from searchers.multiobjective import MOASHA, MOBOHB, MOTPE, HyperbandRandomWeights, MORandomSearch
from searchers.proposers import Proposal, Proposer
from searchers.random import RandomSearch
from searchers.registry import available, get, get_class, register, register_lazy
from searchers.schedules import Bracket, Rung, hyperband_layout
from searchers.tpe import TPE

# External baselines (`pip install 'nas-engine[compare]'`): listed only when their library is
# installed and imported on first use, so importing `searchers` stays fast.
register_lazy("optuna-tpe", "searchers.optuna_adapters:OptunaTPE",
              requires="optuna", extra="compare")
register_lazy("optuna-tpe-hyperband", "searchers.optuna_adapters:OptunaTPEHyperband",
              requires="optuna", extra="compare")
register_lazy("optuna-gp", "searchers.optuna_gp:OptunaGP", requires="optuna", extra="compare")
register_lazy("optuna-motpe", "searchers.optuna_mo:OptunaMOTPE", requires="optuna",
              extra="compare")
# SMAC3 (in `compare` too): the message names the one package it needs.
register_lazy("smac-hyperband", "searchers.smac_adapter:SMACHyperband", requires="smac",
              install='pip install "smac>=2.4"')
# DEHB pins numpy<2 but runs with numpy 2, so no extra can install it.
register_lazy("dehb", "searchers.dehb_adapter:DEHBSearcher", requires="dehb",
              install='pip install --no-deps "dehb==0.1.2" loguru')

__all__ = [
              "ASHA",
              "BOHB",
              "MOASHA",
              "MOBOHB",
              "MOTPE",
              "TPE",
              "AsyncBOHB",
              "Bracket",
              "Hyperband",
              "HyperbandRandomWeights",
              "MORandomSearch",
              "Proposal",
              "Proposer",
              "RandomSearch",
              "Rung",
              "ScheduledSearcher",
              "Searcher",
              "available",
              "get",
              "get_class",
              "hyperband_layout",
              "register",
              "register_lazy",
]
