"""The production-size zoo families are the architectures they are named after, their pruning
removes the right units, and their variants run and answer like the fp32 model."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.profiling

torch = pytest.importorskip("torch")

from simulator.profiling.complexity import count_flops, count_parameters  # noqa: E402
from simulator.profiling.production import BottleneckResNet, LSTMClassifier, MobileNetV3  # noqa: E402
from simulator.profiling.pruning import prune  # noqa: E402
from simulator.profiling.quantization import count_int8_layers, quantize_int8  # noqa: E402
from simulator.profiling.training import estimate_batch_norm  # noqa: E402
from simulator.profiling.variants import FloatModel, cold_loader, convert  # noqa: E402
from simulator.profiling.zoo import PRODUCTION_FAMILY_NAMES, zoo  # noqa: E402
from simulator.profiling.zoo_variants import zoo_servables  # noqa: E402

STANDARD = zoo(seq_len=128)
TINY = zoo(seq_len=16, size="tiny")
CPU = torch.device("cpu")
# With 32 held-out inputs and 10 classes, a model that answered independently of the fp32 one would
# agree on more than 12 of them with probability below 0.001 (binomial, p = 0.1): a floor of 0.4
# shows that int8 and bf16 compute the same function.
PRECISION_AGREEMENT_FLOOR = 0.4


def _example(family, rows: int = 1):
    return family.prepare(family.make_task(0).test_x[:rows], torch.float32)


@pytest.mark.parametrize(
    ("name", "parameters"),
    [("resnet50", 25_557_032), ("mobilenetv3-large", 5_483_032), ("mobilenetv3-small", 2_542_856)],
)
def test_vision_families_have_torchvisions_parameter_counts(name, parameters):
    family = STANDARD[name]
    model = family.build(family.teacher)
    assert count_parameters(model) == parameters  # torchvision's resnet50, mobilenet_v3_large / _small
    assert count_parameters(family.build(family.student)) < 0.6 * parameters


def test_resnet50_is_the_bottleneck_stack_at_four_gflops():
    family = STANDARD["resnet50"]
    model = family.build(family.teacher).eval()
    assert [type(b).__name__ for b in model.blocks].count("Bottleneck") == 3 + 4 + 6 + 3
    flops = count_flops(model, torch.zeros(1, 3, 224, 224))
    assert 8.0e9 < flops < 8.4e9  # 4.1 G multiply-adds, counted as two FLOPs each


def test_bert_base_has_bert_base_widths_and_the_sequence_length():
    family = STANDARD["bert-base"]
    model = family.build(family.teacher)
    assert len(model.layers) == 12 and model.tokens.embedding_dim == 768
    assert all(layer.heads == 12 and layer.ff1.out_features == 3072 for layer in model.layers)
    assert model.positions.num_embeddings == 128
    assert 105e6 < count_parameters(model) < 112e6  # BERT-base: 110 M (with its pooler and segment embeddings)
    assert len(family.build(family.student).layers) == 6


def test_lstm_counts_its_gate_products_as_flops():
    model = LSTMClassifier(vocab=64, seq_len=16, embedding=8, hidden=[16, 12], classes=4).eval()
    gates = 2 * 16 * (4 * 16 * (8 + 16) + 4 * 12 * (16 + 12))  # 2·tokens·4H·(I + H) per layer
    assert count_flops(model, torch.zeros(1, 16, dtype=torch.int64)) == gates + 2 * 12 * 4


@pytest.mark.parametrize("name", PRODUCTION_FAMILY_NAMES)
def test_pruning_removes_units_and_flops_but_keeps_the_interface(name):
    family = TINY[name]
    torch.manual_seed(0)
    teacher = family.build(family.teacher).eval()
    pruned = prune(teacher, 0.5)
    example = _example(family, rows=3)
    assert type(pruned) is type(teacher)
    assert count_parameters(pruned) < count_parameters(teacher)
    assert count_flops(pruned, example[:1]) < count_flops(teacher, example[:1])
    with torch.inference_mode():
        assert pruned(example).shape == teacher(example).shape


@pytest.mark.parametrize("name", ["resnet50", "mobilenetv3-large", "mobilenetv3-small"])
def test_pruning_the_full_size_vision_models_cuts_their_flops(name):
    """Half the inner channels: every block's convolutions lose half (or, in a bottleneck's 3x3, three
    quarters) of their work; only the stem, the last 1x1 convolution and the head keep theirs."""
    family = STANDARD[name]
    teacher = family.build(family.teacher).eval()
    pruned = prune(teacher, 0.5)
    x = torch.zeros(1, 3, 224, 224)
    assert count_flops(pruned, x) < 0.65 * count_flops(teacher, x)


def _silence(model: torch.nn.Module) -> None:
    """Zero every weight (and bias) that makes the first half of each prunable unit: those units then
    output zero, contribute nothing downstream, and have the smallest L1 norms, so pruning half of
    the units must remove exactly them and leave the outputs unchanged."""
    with torch.no_grad():
        if isinstance(model, BottleneckResNet):
            for block in model.blocks:
                for conv in (block.conv1, block.conv2):
                    conv.weight[: conv.out_channels // 2] = 0
        elif isinstance(model, MobileNetV3):
            for block, spec in zip(model.blocks, model.arguments["blocks"]):
                if spec["expand"]:
                    block.expand[0].weight[: spec["expanded"] // 2] = 0
        else:
            for layer in model.layers:
                size = layer.hidden_size
                for name in ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"):
                    getattr(layer, name).view(4, size, -1)[:, : size // 2] = 0


@pytest.mark.parametrize(
    "build",
    [
        lambda: BottleneckResNet(layers=[1, 2, 1, 1], planes=[4, 8, 16, 32], classes=10),
        lambda: MobileNetV3(**TINY["mobilenetv3-large"].teacher),
        lambda: LSTMClassifier(vocab=64, seq_len=16, embedding=8, hidden=[16, 12], classes=4),
    ],
    ids=["resnet", "mobilenet", "lstm"],
)
def test_pruning_removes_exactly_the_weakest_units(build):
    torch.manual_seed(1)
    model = build().eval()
    _silence(model)
    pruned = prune(model, 0.5)
    x = (
        torch.randint(0, 64, (3, 16))
        if isinstance(model, LSTMClassifier)
        else torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    )
    with torch.inference_mode():
        assert torch.allclose(pruned(x), model(x), atol=1e-5)
    assert count_parameters(pruned) < count_parameters(model)


def test_dynamic_int8_quantizes_the_lstm_layers():
    model = LSTMClassifier(vocab=64, seq_len=16, embedding=8, hidden=[16, 12], classes=4).eval()
    quantized = quantize_int8(model, [(torch.randint(0, 64, (4, 16)),)], backend="torch.ao")
    lstms = [m for m in quantized.module.modules() if type(m) is torch.ao.nn.quantized.dynamic.LSTM]
    assert len(lstms) == 2 and count_int8_layers(quantized.module) == 3  # two LSTMs and the head


@pytest.mark.parametrize("name", PRODUCTION_FAMILY_NAMES)
def test_variants_run_and_the_precision_ones_agree_with_fp32(name, tmp_path):
    family = TINY[name]
    variants = ["fp32", "int8", "bf16", "fp16", "pruned", "distilled"]
    servables, skipped = zoo_servables(family, variants, CPU, tmp_path, seed=0)
    info = {s.variant: s.info for s in servables}
    assert set(info) == {"fp32", "int8", "bf16", "pruned", "distilled"}
    assert [s["variant"] for s in skipped] == ["fp16"]
    assert info["int8"]["quantization"]["int8_layers"] > 0
    if family.teacher_training is None and name != "bert-base":
        assert "static" in info["int8"]["quantization"]["backend"]  # convolutions run as int8 kernels
    quality = {variant: entry["quality"] for variant, entry in info.items()}
    assert quality["fp32"]["agreement_with_fp32"] == 1.0
    for precision in ("int8", "bf16"):
        assert quality[precision]["agreement_with_fp32"] >= PRECISION_AGREEMENT_FLOOR
    for smaller in ("pruned", "distilled"):
        assert info[smaller]["params"] < info["fp32"]["params"]
        assert 0.0 <= quality[smaller]["agreement_with_fp32"] <= 1.0
    if family.teacher_training is None:  # an untrained teacher: its labels mean nothing
        assert all(q["accuracy"] is None for q in quality.values())
        assert info["fp32"]["training"]["teacher"]["objective"].startswith("none: randomly initialised")
    else:
        assert all(0.0 <= q["accuracy"] <= 1.0 for q in quality.values())
    for servable in servables:
        with torch.inference_mode():
            inputs = servable.codec.prepare(servable.codec.make_payload(1, np.random.default_rng(0)), servable.dtype)
            assert servable.module(*inputs).shape[0] == 1, servable.variant


@pytest.mark.parametrize("name", ["bert-base"])
def test_production_size_int8_agrees_with_fp32_on_generated_inputs(name):
    """The full-size model, quantized as the profile quantizes it, on a few generated inputs. (Full-size ResNet-50's
    static int8 took 2½ minutes of a 2-core suite: its tiny size is checked above, the full one when it is profiled.)"""
    family = zoo(seq_len=32)[name]
    torch.manual_seed(0)
    model = family.build(family.teacher).eval()
    task = family.make_task(0)
    estimate_batch_norm(model, task, family.prepare, family.calibration_rows)
    calibration = [(family.prepare(task.train_x[:8], torch.float32),)]
    quantized = quantize_int8(model, calibration, backend="torch.ao").module
    x = family.prepare(task.test_x[:8], torch.float32)
    with torch.inference_mode():
        reference, output = model(x), quantized(x)
    relative_error = float(torch.linalg.vector_norm(output - reference) / torch.linalg.vector_norm(reference))
    assert relative_error < 0.25
    assert (output.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.5


def test_int8_lstm_cold_start_loads_float_weights_and_quantizes_them_again(tmp_path):
    model = LSTMClassifier(vocab=64, seq_len=16, embedding=8, hidden=[16], classes=4).eval()
    source = FloatModel(model, lambda: LSTMClassifier(**model.arguments).eval())
    x = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(0))
    built = convert("int8", source, CPU, [(x,)])
    loaded = cold_loader(built, tmp_path / "weights.pt", CPU, skeleton_has_weights=False)()
    with torch.inference_mode():
        assert torch.equal(loaded(x), built.module(x))
    assert "float weights" in built.info["notes"][0]
