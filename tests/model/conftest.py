"""Fixtures for behavioural model tests."""

from __future__ import annotations

import pandas as pd
import pytest

from lr_recsys.config import AEConfig, DataConfig
from lr_recsys.data import prepare
from lr_recsys.train.experiment import ExperimentData, build_experiment_data
from tests.synthetic import planted_explanations, planted_tables


@pytest.fixture(scope="session")
def planted() -> tuple[ExperimentData, pd.DataFrame]:
    """Prepared planted data with AE vectors (and the no-explanation tensors)."""
    prepared = prepare(planted_tables(), DataConfig(dataset="generic"))
    table = planted_explanations(prepared.examples)
    data = build_experiment_data(prepared, {None, "ae"}, table, AEConfig(epochs=15, progress=False))
    return data, table
