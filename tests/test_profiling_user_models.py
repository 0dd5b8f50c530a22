"""Users' own models: factory, TorchScript, torch.export, an nn.Module in hand; files stay data."""

from __future__ import annotations

import pickle
import textwrap

import pytest

pytestmark = pytest.mark.profiling

torch = pytest.importorskip("torch")

from simulator.profiling.api import profile_module, profile_user_model  # noqa: E402
from simulator.profiling.errors import ProfilingError  # noqa: E402
from simulator.profiling.harness import HarnessSettings  # noqa: E402
from simulator.profiling.user_models import (  # noqa: E402
    from_factory,
    from_file,
    import_factory,
    parse_shape,
    random_example,
)

TINY = HarnessSettings.quick(
    batch_sizes=(1, 2),
    concurrency=(1,),
    min_samples=2,
    max_samples=4,
    sequence_calls=5,
    isolated_calls=2,
    isolated_gap_ms=1.0,
)


def _net() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3)).eval()


@pytest.fixture
def factory_module(tmp_path, monkeypatch):
    (tmp_path / "my_models.py").write_text(
        textwrap.dedent(
            """
            import torch

            def build():
                torch.manual_seed(0)
                return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 3))

            not_a_model = lambda: 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_models:build"


def test_a_factory_model_is_profiled_in_its_precision_variants(factory_module, tmp_path):
    example = random_example(parse_shape("1,6"), torch.float32, high=0)
    model = from_factory(factory_module, example)
    bundle = profile_user_model(model, ["fp32", "int8", "pruned"], device="cpu", settings=TINY, out=tmp_path / "p")
    assert bundle.path.name == "my_models-build"
    assert set(bundle.samples["family"]) == {"my_models-build"}
    assert set(bundle.samples["variant"]) == {"fp32", "int8"}
    assert "cold" in set(bundle.samples["mode"])  # the factory rebuilds it, weights come from disk
    info = {m["variant"]: m for m in bundle.metadata["models"]}
    assert info["fp32"]["params"] == 6 * 16 + 16 + 16 * 3 + 3
    assert info["fp32"]["flops_per_sample"] == 2 * (6 * 16 + 16 * 3)
    assert info["fp32"]["quality"]["agreement_with_fp32"] == 1.0
    assert 0.5 < info["int8"]["quality"]["agreement_with_fp32"] <= 1.0
    assert 0 < info["int8"]["quality"]["relative_error"] < 0.2
    assert bundle.metadata["skipped"][0]["variant"] == "pruned"
    assert "needs a zoo architecture" in bundle.metadata["skipped"][0]["reason"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon", "expected package.module:function"),
        ("surely_missing_module_xyz:build", "cannot import 'surely_missing_module_xyz'"),
        ("my_models:absent", "has no callable 'absent'"),
    ],
)
def test_bad_factories_are_explained(factory_module, spec, message):
    with pytest.raises(ProfilingError, match=message):
        import_factory(spec)


def test_a_factory_must_return_a_module(factory_module):
    with pytest.raises(ProfilingError, match="returned a int, not a torch.nn.Module"):
        from_factory("my_models:not_a_model", random_example((1, 6), torch.float32, 0))


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.filterwarnings("ignore::FutureWarning")
def test_torchscript_and_export_files_are_profiled(tmp_path):
    example = random_example((1, 6), torch.float32, high=0)
    scripted = tmp_path / "net.pt"
    torch.jit.script(_net()).save(str(scripted))
    exported = tmp_path / "net.pt2"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.export.save(torch.export.export(_net(), (example[0][:2],), dynamic_shapes=({0: batch},)), exported)
    for path in (scripted, exported):
        bundle = profile_user_model(from_file(path, example), ["fp32"], device="cpu", settings=TINY)
        assert set(bundle.samples["batch_size"]) == {1, 2}
        assert set(bundle.samples["mode"]) == {"sweep", "sequence", "isolated", "cold"}
        info = bundle.metadata["models"][0]
        assert info["size_bytes"] == path.stat().st_size and info["params"] == 163


def test_a_pickle_posing_as_a_model_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps(Exploit()))
    with pytest.raises(ProfilingError, match="not a TorchScript archive"):
        from_file(evil, random_example((1, 6), torch.float32, 0))
    assert not marker.exists()


def test_missing_file_and_bad_shapes():
    with pytest.raises(ProfilingError, match="no such file"):
        from_file("nowhere.pt2", random_example((1, 6), torch.float32, 0))
    with pytest.raises(ProfilingError, match="comma-separated integers"):
        parse_shape("1,a,3")
    with pytest.raises(ProfilingError, match="positive"):
        parse_shape("1,0")


def test_profile_module_returns_a_tidy_dataframe():
    model = _net()
    example = torch.randn(16, 6)
    bundle = profile_module(model, example, name="ranker", variants=["fp32", "bf16"], device="cpu", settings=TINY)
    frame = bundle.samples
    assert bundle.path is None  # nothing written without out=
    assert set(frame["family"]) == {"ranker"} and set(frame["dtype"]) == {"float32", "bfloat16"}
    medians = frame.query("stage == 'end_to_end' and mode == 'sweep'").groupby("batch_size")["latency_ms"].median()
    assert list(medians.index) == [1, 2] and (medians > 0).all()
    assert "cold" not in set(frame["mode"])  # no factory: a cold start cannot rebuild it
    assert any("cold start not measured" in note for note in bundle.metadata["models"][0]["notes"])
