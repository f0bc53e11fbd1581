"""Data validation gates (Great Expectations) for pipeline inputs and outputs."""

from lr_recsys.validate.gates import Failure, GateFailed, Report, gate, run_suite

__all__ = ["Failure", "GateFailed", "Report", "gate", "run_suite"]
