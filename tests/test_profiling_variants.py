"""Zoo variants are real, different kernels, and their quality cost is measured, not assumed."""

from __future__ import annotations

import copy

import numpy as np
import pytest

pytestmark = pytest.mark.profiling

torch = pytest.importorskip("torch")
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from simulator.profiling.complexity import count_flops, count_parameters  # noqa: E402
from simulator.profiling.pruning import prune  # noqa: E402
from simulator.profiling.quality import measure_quality, predict  # noqa: E402
from simulator.profiling.quantization import count_int8_layers, quantize_int8  # noqa: E402
from simulator.profiling.training import train_classifier  # noqa: E402
from simulator.profiling.variants import (  # noqa: E402
    FloatModel,
    VariantUnavailable,
    cold_loader,
    convert,
)
from simulator.profiling.zoo import zoo  # noqa: E402
from simulator.profiling.zoo_variants import zoo_servables  # noqa: E402

FAMILIES = zoo(seq_len=16, size="tiny")
CPU = torch.device("cpu")


def _example(family, rows: int = 1):
    return family.prepare(family.make_task(0).test_x[:rows], torch.float32)


@pytest.mark.parametrize("name", ["mlp", "cnn", "transformer"])
def test_pruning_removes_units_and_flops_but_keeps_the_interface(name):
    family = FAMILIES[name]
    torch.manual_seed(0)
    teacher = family.build(family.teacher).eval()
    pruned = prune(teacher, 0.5)
    example = _example(family, rows=3)
    assert type(pruned) is type(teacher)
    assert count_parameters(pruned) < 0.75 * count_parameters(teacher)
    assert count_flops(pruned, example[:1]) < 0.75 * count_flops(teacher, example[:1])
    with torch.inference_mode():
        assert pruned(example).shape == teacher(example).shape


def test_mlp_pruning_keeps_the_largest_neurons_weights():
    family = FAMILIES["mlp"]
    torch.manual_seed(0)
    teacher = family.build(family.teacher).eval()
    pruned = prune(teacher, 0.5)
    norms = teacher.hidden[0].weight.abs().sum(dim=1)
    kept = torch.sort(torch.topk(norms, len(norms) // 2).indices).values
    assert torch.equal(pruned.hidden[0].weight, teacher.hidden[0].weight[kept])


def test_attention_matmuls_are_counted():
    family = FAMILIES["transformer"]
    model = family.build(family.teacher).eval()
    example = _example(family)
    with FlopCounterMode(display=False) as plain, torch.inference_mode():
        model(example)
    heads, head_dim, seq_len = 4, 8, 16
    attention = 2 * (2 * heads * seq_len * seq_len * head_dim)  # scores = QKᵀ, output = scores·V
    assert count_flops(model, example) - plain.get_total_flops() == attention


def test_int8_replaces_linear_layers_with_quantized_kernels():
    family = FAMILIES["transformer"]
    model = family.build(family.teacher).eval()
    quantized = quantize_int8(model, [(_example(family, 8),)], backend="torch.ao")
    linears = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    qlinears = [m for m in quantized.module.modules() if type(m) is torch.ao.nn.quantized.dynamic.Linear]
    assert len(qlinears) == len(linears) == quantized.info["int8_layers"]
    assert quantized.info["backend"] == "torch.ao.quantization.quantize_dynamic"
    assert not any(type(m) is torch.nn.Linear for m in quantized.module.modules())


def test_int8_cnn_quantizes_convolutions_statically():
    family = FAMILIES["cnn"]
    model = family.build(family.teacher).eval()
    quantized = quantize_int8(model, [(_example(family, 8),)])
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    assert "static" in quantized.info["backend"]
    assert "convolutions" in quantized.info["scope"]
    assert count_int8_layers(quantized.module) == convs + 1  # + the linear head


def test_fp16_on_cpu_is_skipped_with_a_reason_and_gpu_int8_needs_torchao(monkeypatch):
    model = FAMILIES["mlp"].build(FAMILIES["mlp"].teacher)
    source = FloatModel(model, None)
    with pytest.raises(VariantUnavailable, match="fp16 is profiled on GPU only"):
        convert("fp16", source, CPU, [])
    with pytest.raises(VariantUnavailable, match="int8 kernels run on the CPU only"):
        convert("int8", source, torch.device("cuda"), [], int8_backend="torch.ao")
    monkeypatch.setattr("simulator.profiling.variants.torchao_available", lambda: False)
    with pytest.raises(VariantUnavailable, match="GPU int8 needs torchao"):
        convert("int8", source, torch.device("cuda"), [])


def test_int8_on_the_cpu_defaults_to_torch_ao_and_torchao_is_there_on_request():
    pytest.importorskip("torchao")
    family = FAMILIES["mlp"]
    model = family.build(family.teacher).eval()
    example = _example(family, 8)
    assert quantize_int8(model, [(example,)]).info["backend"] == "torch.ao.quantization.quantize_dynamic"
    quantized = quantize_int8(model, [(example,)], backend="torchao")
    linears = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
    assert quantized.info["backend"].startswith("torchao") and quantized.info["int8_layers"] == linears
    with torch.inference_mode():
        assert torch.allclose(quantized.module(example), model(example), atol=0.05)


def test_a_broken_variant_gets_lower_agreement():
    family = FAMILIES["mlp"]
    task = family.make_task(0)
    teacher = family.build(family.teacher)
    train_classifier(teacher, task, family.prepare, family.teacher_training, seed=0)
    reference = predict(teacher, task.test_x, family.prepare)
    good = measure_quality(teacher, task, reference, family.prepare)
    broken = copy.deepcopy(teacher)
    with torch.no_grad():
        for parameter in broken.parameters():
            parameter.copy_(torch.randn_like(parameter))
    bad = measure_quality(broken, task, reference, family.prepare)
    assert good["agreement_with_fp32"] == 1.0
    assert good["accuracy"] > 1.5 * good["chance_accuracy"]  # the teacher learned the task
    assert bad["agreement_with_fp32"] < 0.8 * good["agreement_with_fp32"]
    assert bad["accuracy_drop"] > 0


def test_zoo_variants_differ_in_size_and_carry_measured_quality(tmp_path):
    servables, skipped = zoo_servables(
        FAMILIES["mlp"], ["fp32", "int8", "bf16", "fp16", "pruned", "distilled"], CPU, tmp_path, seed=0
    )
    info = {s.variant: s.info for s in servables}
    assert set(info) == {"fp32", "int8", "bf16", "pruned", "distilled"}
    assert skipped == [
        {
            "family": "mlp",
            "variant": "fp16",
            "device": "cpu",
            "reason": "fp16 is profiled on GPU only: CPUs have no fp16 matrix kernels worth serving with",
        }
    ]
    for smaller in ("pruned", "distilled"):
        assert info[smaller]["params"] < info["fp32"]["params"]
        assert info[smaller]["flops_per_sample"] < info["fp32"]["flops_per_sample"]
    assert info["int8"]["size_bytes"] < info["fp32"]["size_bytes"]
    assert info["int8"]["quantization"]["int8_layers"] == 3
    assert info["bf16"]["dtype"] == "bfloat16" and info["int8"]["dtype"] == "int8"
    assert info["distilled"]["training"]["distillation"]["objective"].startswith("KL(teacher || student)")
    agreements = {v: i["quality"]["agreement_with_fp32"] for v, i in info.items()}
    assert agreements["fp32"] == 1.0
    assert all(0.0 < a <= 1.0 for a in agreements.values())
    assert agreements["distilled"] < 1.0  # a different, smaller model disagrees somewhere
    accuracies = [i["quality"]["accuracy"] for i in info.values()]
    assert len(set(accuracies)) > 1  # measured per variant, not copied from the teacher


@pytest.mark.parametrize("precision", ["fp32", "int8", "bf16"])
def test_cold_load_rebuilds_an_equivalent_model_from_weights_only(tmp_path, precision):
    family = FAMILIES["cnn"]
    model = family.build(family.teacher).eval()
    architecture, arguments = type(model), model.arguments
    source = FloatModel(model, lambda: architecture(**arguments).eval())
    example = _example(family, 4)
    built = convert(precision, source, CPU, [(example,)])
    load = cold_loader(built, tmp_path / "weights.pt", CPU, skeleton_has_weights=False)
    loaded = load()
    with torch.inference_mode():
        x = example.to(built.dtype)
        assert torch.allclose(loaded(x).float(), built.module(x).float())


def test_tasks_are_reproducible():
    first, second = FAMILIES["transformer"].make_task(3), FAMILIES["transformer"].make_task(3)
    assert np.array_equal(first.train_x, second.train_x) and np.array_equal(first.test_y, second.test_y)
