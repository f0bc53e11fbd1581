"""Evaluation: predictions gate and the table of the model against its baselines."""

from kfp import dsl
from kfp.dsl import HTML, Dataset, Input, Metrics, Model, Output

from components import BASE_IMAGE


@dsl.component(base_image=BASE_IMAGE)
def evaluate_op(
    model: Input[Model],
    evaluation: Output[Dataset],
    metrics: Output[Metrics],
    report: Output[HTML],
):
    import shutil
    from pathlib import Path

    from lr_recsys.steps import evaluate
    from lr_recsys.steps.train import REPORT

    result = evaluate(Path(model.path), Path(evaluation.path))
    shutil.copyfile(Path(evaluation.path) / REPORT, report.path)
    for row in result["table"]:
        for key, value in row.items():
            if key != "model":
                metrics.log_metric(f"{row['model']}/{key}", value)
