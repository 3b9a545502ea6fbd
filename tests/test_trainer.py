from __future__ import annotations

import dataclasses
import itertools
import math
import time
from pathlib import Path

import pytest
import torch
from torch import nn

import nas.augment as augment_module
import spaces
from nas.augment import random_affine, random_shift
from nas.data import Dataset
from nas.errors import UserError
from nas.optim import lr_factor, make_optimizer
from nas.trainer import (
    CPU_EVAL_BATCH,
    DEVICE_EVAL_BATCH,
    TrainerOptions,
    evaluate,
    resolve_device,
    train,
)
from nas.types import TrialStatus
from spaces.training import TrainSettings
from tests.helpers import blobs


def _model(seed: int = 0, d: int = 8, classes: int = 3) -> nn.Module:
    config = dict(spaces.residual_mlp(width=32, n_blocks=1).get_default_configuration())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spaces.build_model(config, (d,), classes)


def test_epoch_budget_learns_and_reports() -> None:
    data = blobs()
    out = train(_model(), data, TrainSettings(lr=3e-3, batch_size=32), epochs=5, seed=0)
    r = out.result
    assert r.status is TrialStatus.OK and r.epochs == 5
    assert [p["epoch"] for p in r.curve] == [1, 2, 3, 4, 5]
    assert r.metrics["val_accuracy"] > 0.8  # chance is 1/3
    assert r.loss == pytest.approx(1 - r.metrics["val_accuracy"])
    assert r.metrics["params"] == sum(p.numel() for p in out.model.parameters())
    assert r.metrics["device"] == "cpu" and r.metrics["peak_memory_mb"] is None
    assert r.curve[-1]["train_loss"] < r.curve[0]["train_loss"]


def test_same_seed_same_weights_on_cpu() -> None:
    data = blobs()
    settings = TrainSettings(batch_size=16)
    a = train(_model(), data, settings, epochs=2, seed=7)
    b = train(_model(), data, settings, epochs=2, seed=7)
    c = train(_model(), data, settings, epochs=2, seed=8)
    for pa, pb in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(pa, pb)
    assert a.result.curve[-1]["train_loss"] == b.result.curve[-1]["train_loss"]
    assert a.result.curve[-1]["train_loss"] != c.result.curve[-1]["train_loss"]


def test_fractional_epochs_and_batch_larger_than_data() -> None:
    data = blobs(n=40)
    r = train(_model(), data, TrainSettings(batch_size=10), epochs=0.5, seed=0).result
    assert r.epochs == 0.5 and len(r.curve) == 1
    r = train(_model(), data, TrainSettings(batch_size=512), epochs=2, seed=0).result
    assert r.epochs == 2 and r.status is TrialStatus.OK


def test_time_budget_stops_after_the_crossing_batch() -> None:
    data = blobs()
    r = train(_model(), data, TrainSettings(batch_size=16), seconds=0.3, seed=0).result
    assert r.status is TrialStatus.OK
    assert r.seconds >= 0.3 and r.epochs > 0
    assert r.curve[-1]["seconds"] >= 0.3


def test_deadline_truncates() -> None:
    data = blobs()
    r = train(_model(), data, TrainSettings(batch_size=16), epochs=10_000, seed=0,
              deadline=time.monotonic() + 0.2).result
    assert r.status is TrialStatus.TRUNCATED and 0 < r.epochs < 10_000
    assert math.isfinite(r.loss) and r.ok


def test_a_deadline_leaves_time_for_the_last_validation_pass(monkeypatch) -> None:
    # A validation pass of at least 0.6 s: the run must start its last one a whole pass before
    # the deadline (it used to start it after the deadline, ending one pass late). Read off
    # when the passes start, not the clock at the end: a loaded machine slows the passes,
    # which only makes the run stop earlier.
    import nas.trainer as trainer_module

    starts: list[float] = []

    def slow_evaluate(*args, **kwargs):
        starts.append(time.monotonic())
        time.sleep(0.6)
        return evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "evaluate", slow_evaluate)
    deadline = time.monotonic() + 1.5
    r = train(_model(), blobs(), TrainSettings(batch_size=16), epochs=10_000, seed=0,
              deadline=deadline).result
    assert r.status is TrialStatus.TRUNCATED and r.ok
    assert starts and starts[-1] < deadline - 0.3


def test_the_evaluation_batch_follows_the_device() -> None:
    assert TrainerOptions().eval_batch("cpu") == CPU_EVAL_BATCH
    assert TrainerOptions().eval_batch("cuda") == DEVICE_EVAL_BATCH > CPU_EVAL_BATCH
    assert TrainerOptions(eval_batch_size=7).eval_batch("cuda") == 7
    for bad in (0, -1, 2.5, True):
        with pytest.raises(UserError, match="eval_batch_size"):
            TrainerOptions(eval_batch_size=bad)


def test_divergence_is_detected() -> None:
    model = nn.Sequential(nn.Linear(8, 3))
    with torch.no_grad():
        model[0].weight.fill_(math.inf)
    r = train(model, blobs(), TrainSettings(), epochs=3, seed=0).result
    assert r.status is TrialStatus.DIVERGED and math.isinf(r.loss) and not r.ok
    assert r.epochs == 1 and "nan" in r.error


def test_exactly_one_budget() -> None:
    with pytest.raises(ValueError):
        train(_model(), blobs(), TrainSettings(), seed=0)
    with pytest.raises(ValueError):
        train(_model(), blobs(), TrainSettings(), epochs=1, seconds=1, seed=0)


def test_settings_from_config_and_validation() -> None:
    s = TrainSettings.from_config({"optimizer": "sgd", "lr": 0.1, "batch_size": 128,
                                   "width": 3})
    assert (s.optimizer, s.lr, s.batch_size, s.lr_schedule) == ("sgd", 0.1, 128, "cosine")
    with pytest.raises(UserError):
        TrainSettings(optimizer="lbfgs")
    with pytest.raises(UserError):
        TrainSettings(lr=0)


def test_optimizers() -> None:
    params = list(_model().parameters())
    assert isinstance(make_optimizer(TrainSettings(optimizer="adam"), params), torch.optim.Adam)
    assert isinstance(make_optimizer(TrainSettings(optimizer="adamw"), params), torch.optim.AdamW)
    sgd = make_optimizer(TrainSettings(optimizer="sgd"), params)
    assert isinstance(sgd, torch.optim.SGD) and sgd.defaults["momentum"] == 0.9
    # One fused kernel on the CPU instead of a Python loop over the parameters.
    assert sgd.defaults["fused"] is True
    assert make_optimizer(TrainSettings(optimizer="adam"), params).defaults["fused"] is True


def test_fused_optimizer_steps_like_the_reference() -> None:
    # The fused kernel must take the same step as torch's reference loop, up to rounding.
    for name in ("adam", "adamw", "sgd"):
        settings = TrainSettings(optimizer=name, lr=1e-2, weight_decay=1e-3)
        models = [_model(), _model()]
        models[1].load_state_dict(models[0].state_dict())
        fused = make_optimizer(settings, models[0].parameters())
        loop_only = ("fused", "foreach", "decoupled_weight_decay")
        reference = type(fused)(models[1].parameters(), **{
            k: v for k, v in fused.defaults.items() if k not in loop_only})
        x = torch.randn(16, 8)
        for model, opt in zip(models, (fused, reference), strict=True):
            model.eval()  # no dropout: both models must see the same function
            for _ in range(3):
                opt.zero_grad()
                model(x).square().mean().backward()
                opt.step()
        for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_lr_warmup_rises_linearly_then_decays() -> None:
    assert lr_factor("cosine", 0.0, 0.2) == 0.0
    assert lr_factor("cosine", 0.1, 0.2) == pytest.approx(0.5)
    assert lr_factor("cosine", 0.2, 0.2) == pytest.approx(1.0)
    assert lr_factor("cosine", 0.6, 0.2) == pytest.approx(0.5)  # halfway through the decay
    assert lr_factor("cosine", 1.0, 0.2) == pytest.approx(0.0)
    assert lr_factor("constant", 0.05, 0.1) == pytest.approx(0.5)
    assert lr_factor("constant", 0.5, 0.1) == 1.0


def test_random_shift_translates_each_sample() -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.randn(64, 2, 16, 16)
    out = random_shift(images, g)
    assert out.shape == images.shape
    offsets = set()
    for original, shifted in zip(images, out, strict=True):
        # Find the translation (up to 16 / 8 = 2 each way) that explains this sample.
        found = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                 if torch.equal(_translate(original, dy, dx), shifted)]
        assert len(found) == 1
        offsets.add(found[0])
    assert len(offsets) > 10  # each sample gets its own offset
    g2 = torch.Generator().manual_seed(0)
    assert torch.equal(random_shift(images, g2), out)  # the generator decides everything
    signals = torch.randn(8, 1, 40)
    shifted = random_shift(signals, g)
    assert any(torch.equal(_translate(signals[0], 0, d), shifted[0]) for d in range(-5, 6))
    flat = torch.randn(8, 10)
    assert random_shift(flat, g) is flat


def _translate(x: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`x` (C, H, W) or (C, L) moved by (dy, dx), zero-filled; (C, L) moves by dx only."""
    out = torch.zeros_like(x)
    if x.dim() == 2:
        length = x.shape[1]
        src = x[:, max(0, -dx):length - max(0, dx)]
        out[:, max(0, dx):max(0, dx) + src.shape[1]] = src
        return out
    h, w = x.shape[1:]
    src = x[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
    return out


def test_random_affine_moves_each_sample_by_a_small_resampled_amount(monkeypatch) -> None:
    g = torch.Generator().manual_seed(0)
    images = torch.zeros(64, 1, 16, 16)
    images[:, :, 7:9, 7:9] = 1.0  # a blob at the centre: its centroid tracks the transform
    out = random_affine(images, g)
    assert out.shape == images.shape
    assert torch.equal(random_affine(images, torch.Generator().manual_seed(0)), out)
    assert len({tuple(o.flatten().tolist()) for o in out}) == 64  # a draw per sample
    ys, xs = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    mass = out[:, 0].sum((1, 2))
    centre = torch.stack([(out[:, 0] * ys).sum((1, 2)), (out[:, 0] * xs).sum((1, 2))], 1)
    moved = (centre / mass[:, None] - 7.5).abs()
    # Rotation and scaling about the centre keep the blob there; only the translation moves
    # it, by 1/16 of 16 = 1 position at most before the rotation and scaling (which can
    # stretch it to 1.1 * sqrt(2) along an axis), and usually by a fraction of one.
    assert moved.max() <= 1.1 * math.sqrt(2) and (moved % 1 > 0.05).any()
    assert not torch.equal(out, images)
    signals = torch.randn(8, 2, 40)
    assert random_affine(signals, g).shape == signals.shape
    flat = torch.randn(8, 10)
    assert random_affine(flat, g) is flat
    # With every bound at zero the resampling is exact: the transform is the identity.
    for name in ("AFFINE_DEGREES", "AFFINE_SCALE", "AFFINE_TRANSLATE"):
        monkeypatch.setattr(augment_module, name, 0.0)
    assert torch.allclose(random_affine(images, g), images, atol=1e-6)
    assert torch.allclose(random_affine(signals, g), signals, atol=1e-6)


@pytest.mark.parametrize("augment", ["shift", "affine"])
def test_augmentation_changes_what_the_model_sees(augment: str) -> None:
    data = _signals(blobs(n=64))
    weights = {}
    for name in ("none", augment, augment):
        settings = TrainSettings(batch_size=16, augment=name)
        out = train(_model_for((1, 8)), data, settings, epochs=1, seed=0)
        weights.setdefault(name, []).append(torch.cat([p.flatten()
                                                       for p in out.model.parameters()]))
    assert not torch.equal(weights["none"][0], weights[augment][0])
    assert torch.equal(*weights[augment])  # the trainer's generator decides the draws


def _model_for(shape: tuple[int, ...]) -> nn.Module:
    config = dict(spaces.residual_mlp(width=16, n_blocks=1, dropout=0.0)
                  .get_default_configuration())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return spaces.build_model(config, shape, 3)


def test_label_smoothing_keeps_the_training_loss_off_zero() -> None:
    data = blobs()
    losses = {}
    for smoothing in (0.0, 0.3):
        settings = TrainSettings(lr=3e-3, batch_size=32, label_smoothing=smoothing)
        out = train(_model(), data, settings, epochs=15, seed=0)
        losses[smoothing] = out.result.metrics["train_loss"]
    # The smoothed target (0.8, 0.1, 0.1) has entropy 0.64: no model gets below it.
    assert losses[0.3] > 0.6 > 0.3 > losses[0.0]


def test_lr_schedules() -> None:
    assert lr_factor("constant", 0.7) == 1.0
    assert lr_factor("cosine", 0.0) == 1.0
    assert lr_factor("cosine", 0.5) == pytest.approx(0.5)
    assert lr_factor("cosine", 1.0) == pytest.approx(0.0)


def test_cosine_schedule_reaches_zero_at_the_end() -> None:
    data = blobs(n=64)
    model = _model()
    seen: list[float] = []
    opt_cls = torch.optim.AdamW
    original = opt_cls.step

    def spy(self, *a, **k):  # record the lr each step used
        seen.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    opt_cls.step = spy
    try:
        train(model, data, TrainSettings(lr=0.01, batch_size=16), epochs=2, seed=0)
    finally:
        opt_cls.step = original
    assert seen[0] == pytest.approx(0.01) and len(seen) == 8
    assert all(a > b for a, b in itertools.pairwise(seen))
    assert seen[-1] < 0.01 * 0.05


def test_evaluate() -> None:
    data = blobs()
    model = nn.Linear(8, 3)
    loss, acc = evaluate(model, data.x_val, data.y_val, batch_size=7)
    logits = model(data.x_val)
    assert loss == pytest.approx(nn.functional.cross_entropy(logits, data.y_val).item(), rel=1e-5)
    assert acc == pytest.approx((logits.argmax(1) == data.y_val).float().mean().item())


def test_resolve_device() -> None:
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type in ("cpu", "cuda", "mps")
    with pytest.raises(UserError):
        resolve_device("banana")
    if not torch.cuda.is_available():
        with pytest.raises(UserError, match="CUDA"):
            resolve_device("cuda")


def test_options_to_dict() -> None:
    assert TrainerOptions(device="cpu").to_dict()["device"] == "cpu"


def _dropout_model() -> nn.Module:
    config = dict(spaces.residual_mlp(width=32, n_blocks=2, dropout=0.3,
                                      norm="batchnorm").get_default_configuration())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return spaces.build_model(config, (8,), 3)


def _signals(data: Dataset) -> Dataset:
    """`data` with each sample seen as a one-channel signal (1, d), so shifts apply."""
    def shaped(x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 1, -1)

    return dataclasses.replace(data, x_train=shaped(data.x_train), x_val=shaped(data.x_val),
                               x_test=shaped(data.x_test), input_shape=(1, data.input_shape[0]))


SMALL_DATA = {"warmup": 0.1, "label_smoothing": 0.1, "augment": "shift"}


@pytest.mark.parametrize("extra", [{}, SMALL_DATA, {"augment": "affine"}],
                         ids=["plain", "small-data", "affine"])
@pytest.mark.parametrize("first", [3.0, 2.5])  # an epoch boundary, and mid-epoch
def test_continuing_equals_training_straight(first: float, extra: dict) -> None:
    from nas.trainer import TrainState

    # With augmentation the shifts come from the checkpointed generator too.
    data = _signals(blobs()) if extra else blobs()
    settings = TrainSettings(optimizer="adamw", batch_size=32, lr_schedule="cosine", **extra)
    straight = train(_dropout_model(), data, settings, epochs=9, horizon=9, seed=4)
    part = train(_dropout_model(), data, settings, epochs=first, horizon=9, seed=4)
    # Through a checkpoint's plain form, as the runner stores it.
    state = TrainState.from_dict(part.state.to_dict())
    model = _dropout_model()
    model.load_state_dict(part.model.state_dict())
    rest = train(model, data, settings, epochs=9, horizon=9, seed=123, resume=state)
    assert rest.result.epochs + part.result.epochs == pytest.approx(9)
    assert part.result.epochs == pytest.approx(first, abs=0.1)
    for a, b in zip(straight.model.state_dict().values(), rest.model.state_dict().values(),
                    strict=True):
        assert torch.equal(a, b)
    assert rest.result.curve[-1]["val_loss"] == straight.result.curve[-1]["val_loss"]


def test_horizon_keeps_the_lr_high_for_a_partial_run() -> None:
    data = blobs(n=64)
    seen: list[float] = []
    original = torch.optim.AdamW.step

    def spy(self, *a, **k):
        seen.append(self.param_groups[0]["lr"])
        return original(self, *a, **k)

    torch.optim.AdamW.step = spy
    try:
        train(_model(), data, TrainSettings(lr=0.01, batch_size=16), epochs=1, horizon=4, seed=0)
    finally:
        torch.optim.AdamW.step = original
    # One epoch of a four-epoch cosine: the lr ends near cos(pi/4)-ish, far from zero.
    assert seen[-1] > 0.01 * 0.8


def test_continuing_requires_epochs_and_matching_batches() -> None:
    data = blobs()
    part = train(_model(), data, TrainSettings(batch_size=32), epochs=1, seed=0)
    with pytest.raises(ValueError):
        train(_model(), data, TrainSettings(batch_size=32), seconds=1, resume=part.state)
    with pytest.raises(ValueError):
        train(_model(), data, TrainSettings(batch_size=16), epochs=2, resume=part.state)


def test_precision_option_is_checked() -> None:
    with pytest.raises(UserError):
        TrainerOptions(precision="fp8")
    assert TrainerOptions().to_dict()["precision"] == "auto"


@pytest.mark.slow
def test_compiled_training_matches_eager_closely() -> None:
    data = blobs()
    settings = TrainSettings(batch_size=32)
    eager = train(_model(), data, settings, epochs=2, seed=0).result
    compiled = train(_model(), data, settings, epochs=2, seed=0,
                     options=TrainerOptions(compile=True)).result
    assert compiled.status is TrialStatus.OK
    assert compiled.metrics["val_loss"] == pytest.approx(eager.metrics["val_loss"], rel=1e-3)


def test_data_is_copied_to_an_accelerator_once_per_dataset() -> None:
    from nas.trainer import on_device
    from tests.helpers import blobs

    first, second = blobs(seed=0), blobs(seed=1)
    meta = torch.device("meta")  # stands for a GPU: a real copy, no GPU needed
    copies = on_device(first, meta)
    assert all(t.device.type == "meta" for t in copies)
    assert on_device(first, meta) is copies  # the next trial reuses the copy
    assert on_device(second, meta) is not copies
    cpu = torch.device("cpu")
    assert on_device(first, cpu)[0] is first.x_train  # nothing to copy on the CPU


def test_the_first_trial_in_a_process_is_not_charged_with_torchs_compiler_import() -> None:
    # Building an optimizer imports torch's compiler once per process (seconds): a first trial
    # timed with it looked several times costlier than its configuration, and the replicas'
    # reserve sized on it stopped a 12 s search after one trial. Run in a fresh process, where
    # nothing has imported it yet; the trial's clock starts when training the config starts.
    import subprocess
    import sys

    code = """
import sys
import nas.objective as objective
from nas.budget import Budget
from nas.types import Trial
import spaces
from tests.helpers import blobs
loaded = []
real = objective.train_config
def spy(*args, **kwargs):
    loaded.append("torch._dynamo" in sys.modules)
    return real(*args, **kwargs)
objective.train_config = spy
assert "torch._dynamo" not in sys.modules
config = dict(spaces.residual_mlp(width=32, n_blocks=1).get_default_configuration())
run = objective.TrainingObjective(blobs(n=60), Budget.parse("1ep"))
outcome = run(Trial(id=0, config=config), seed=0)
print(loaded, outcome.result.status.value)
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=Path(__file__).parents[1], check=True).stdout
    assert out.split()[-2:] == ["[True]", "ok"]
