"""One seed of one strategy, trained and measured: the core the strategy step, the compare
step's extra seeds and the decision map share.

`make_plan` seeds every generator and makes the strategy's plan, its model built where the
distribution wants it; `train_seed` trains the plan under the cost meter, with the
callbacks its caller observes it by (the strategy step's MLflow curves and checkpoint),
then evaluates the model on both test sets, as every caller does. Nothing here logs to
MLflow or writes a file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from retrainlab.config import Params
from retrainlab.data import Prepared
from retrainlab.measure.evaluation import Predictions
from retrainlab.models.bundle import ModelBundle
from retrainlab.strategies import Plan, plan_for
from retrainlab.training.cost import Cost, CostMeter, price
from retrainlab.training.distribute import MULTI_WORKER, NONE, Distribution, combine_costs, gather_costs
from retrainlab.training.loop import HeldOutCurves, evaluate, fit, gpus_in_use, rows_trained, seed_everything


@dataclasses.dataclass
class SeedOutcome:
    """What one seed's training gave: its model, every figure (metrics and cost), its
    device, each worker's cost in a cluster, and the true and predicted label of the test rows."""

    bundle: ModelBundle
    figures: dict[str, float]
    device: str  # where it trained, as the cost meter saw it
    workers: list[dict[str, float]]
    predictions: Predictions


def make_plan(name: str, data: Prepared, params: Params, base: ModelBundle | None, seed: int,
              dist: Distribution | None = None) -> Plan:
    """Strategy `name`'s plan for `seed`, every generator seeded first, its model built in
    the distribution's scope."""
    seed_everything(seed)
    with (dist or Distribution(NONE)).scope():
        return plan_for(name, data, params, base, seed)


def train_seed(
    plan: Plan,
    data: Prepared,
    params: Params,
    seed: int,
    reference: float | None,
    *,
    dist: Distribution | None = None,
    callbacks: Sequence = (),
    initial_epoch: int = 0,
    held_out: bool = False,
    progress: bool = False,
    refused: str = "",
    adopted: SeedOutcome | None = None,
) -> SeedOutcome:
    """Train the plan and evaluate its model; `reference` is the same seed's baseline figure
    on the old data, `acc_old` or `rmse_old` (None: this is the baseline). `held_out` adds
    the per-epoch primary figure on samples of both
    test sets to the epochs' logs, before `callbacks` see them (not in a multi-worker
    cluster: scoring would be a collective step). `refused` says what refusing a model that
    is not finite spares (retrainlab.training.loop.evaluate). A plan of no epochs (a brought
    model adopted as it is) scores the same for every seed: `adopted`, an earlier seed's
    outcome of that model, is given back instead of evaluating it again."""
    if adopted is not None and not plan.epochs:
        return dataclasses.replace(adopted, bundle=plan.bundle)
    dist = dist or Distribution(NONE)
    curves = ([HeldOutCurves(plan.bundle, data, dist.tf_strategy is not None)]
              if held_out and dist.mode != MULTI_WORKER else [])
    cost, workers = measured_fit(plan, data, params, seed, dist, [*curves, *callbacks], initial_epoch, progress)
    bundle = plan.bundle.detached() if dist.tf_strategy is not None else plan.bundle
    predictions = Predictions(numbers=plan.bundle.regression)
    figures = evaluate(bundle, data, plan, reference, predictions, refused) | cost.metrics()
    return SeedOutcome(bundle, figures, cost.device, workers, predictions)


def measured_fit(plan: Plan, data: Prepared, params: Params, seed: int, dist: Distribution, callbacks: Sequence = (),
                 initial_epoch: int = 0, progress: bool = False) -> tuple[Cost, list[dict[str, float]]]:
    """Train under the cost meter; return the cluster's cost and each worker's figures.

    Every worker of a cluster calls this for every seed, in the same order: gathering the
    figures is a collective step of the cluster."""
    prices = params.cost.cpu_core_hour_usd, params.cost.gpu_hour_usd
    if not plan.epochs:  # a brought baseline, taken as it is: adopting it costs nothing
        return Cost("cpu", 0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, price(0.0, 0.0, *prices)), []
    with CostMeter(gpus_in_use(), *prices) as meter:
        fit(plan, data, callbacks=list(callbacks), initial_epoch=initial_epoch, seed=seed, dist=dist,
            progress=progress, memory_budget_mb=params.memory_budget_mb)
        epochs = plan.epochs_trained if plan.epochs_trained is not None else plan.epochs
        meter.samples = (rows_trained(data, plan) - plan.rows_aside) * (epochs - initial_epoch)
    workers = gather_costs(dist, meter.cost)
    return combine_costs(meter.cost, workers, *prices), workers


def workload(data: Prepared, plan: Plan) -> str:
    """What one seed's training does, for its line on the console."""
    if not plan.epochs:
        return "the brought model as it is: no training"
    if plan.stopping is not None:
        return (f"up to {plan.epochs} epochs on {rows_trained(data, plan):,} rows, stopping after "
                f"{plan.stopping.patience} without a better loss on a {plan.stopping.fraction:.0%} set aside")
    return f"{plan.epochs} epochs on {rows_trained(data, plan):,} rows"
