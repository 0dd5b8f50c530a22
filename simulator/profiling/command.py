"""``latsim profile``: time real kernels into a profile bundle, or print a bundle's Markdown table.

torch is imported only when profiling actually runs (it is the optional ``profile`` extra), so
``--table`` and the rest of latsim work without it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Literal

import typer
from rich.console import Console

from simulator.errors import LatsimError
from simulator.files import path_component
from simulator.profiling.errors import ProfilingError
from simulator.terminal import plain

Device = Literal["auto", "cpu", "cuda"]
ZooSize = Literal["standard", "tiny"]
Int8BackendOption = Literal["auto", "torchao", "torch.ao"]


def _integers(text: str | None, option: str) -> tuple[int, ...] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise typer.BadParameter(f"{text!r}: give comma-separated positive integers, e.g. 1,2,4", param_hint=option)
    return tuple(sorted({int(part) for part in parts}))


def _names(values: list[str] | None) -> list[str] | None:
    """Repeated options and comma-separated lists both work: --family mlp,cnn --family transformer."""
    return [name.strip() for value in values for name in value.split(",") if name.strip()] if values else None


def profile_command(
    family: Annotated[
        list[str] | None, typer.Option(
            "--family",
            "-f",
            help="zoo family: mlp, cnn, transformer (the default: these three), or the production-size "
            "resnet50, mobilenetv3-large, mobilenetv3-small, bert-base, lstm",
        )
    ] = None,
    variant: Annotated[
        list[str] | None,
        typer.Option("--variant", "-v", help="fp32, int8, bf16, fp16, pruned, distilled (default: all that apply)"),
    ] = None,
    device: Annotated[Device, typer.Option(help="auto picks the GPU when torch sees one")] = "auto",
    quick: Annotated[bool, typer.Option("--quick", help="a short run: fewer batch sizes, samples and repeats")] = False,
    out: Annotated[Path, typer.Option(help="bundles go to OUT/<hardware-id>/<name>/")] = Path("profiles"),
    name: Annotated[str | None, typer.Option(help="bundle name (default: zoo, or the model's name)")] = None,
    model: Annotated[
        str | None, typer.Option(help="your model: an importable factory package.module:build returning an nn.Module")
    ] = None,
    model_file: Annotated[
        Path | None, typer.Option(help="your model as a TorchScript archive (.pt/.ts) or torch.export program (.pt2)")
    ] = None,
    input_shape: Annotated[
        str | None, typer.Option(help="input shape of your model, batch dimension first, e.g. 1,3,32,32")
    ] = None,
    input_dtype: Annotated[str, typer.Option(help="input dtype of your model, e.g. float32, int64")] = "float32",
    input_high: Annotated[
        int, typer.Option(help="integer inputs are drawn from [0, INPUT_HIGH), e.g. a vocabulary")
    ] = 100,
    batch_sizes: Annotated[str | None, typer.Option(help="batch sizes to sweep, e.g. 1,2,4,8,16,32,64")] = None,
    threads: Annotated[
        str | None, typer.Option(help="intra-op thread counts to sweep, e.g. 1,2 (with --table: the one to report)")
    ] = None,
    serving_threads: Annotated[
        int | None,
        typer.Option(
            min=1, help="intra-op threads of the sequence, isolated and cold runs (default: torch's, one per core)"
        ),
    ] = None,
    concurrency: Annotated[
        str | None, typer.Option(help="concurrent workers per device to measure, e.g. 1,2,4")
    ] = None,
    seq_len: Annotated[
        int, typer.Option(min=1, help="sequence length of the transformer, bert-base and lstm families")
    ] = 64,
    zoo_size: Annotated[
        ZooSize, typer.Option(help="standard: the profiled sizes; tiny: toy-sized families for a smoke test")
    ] = "standard",
    seed: Annotated[int, typer.Option(help="seed of the synthetic tasks, training and payloads")] = 0,
    int8_backend: Annotated[Int8BackendOption, typer.Option(help="auto: torch.ao on the CPU, torchao on a GPU")] = "auto",
    table: Annotated[
        Path | None, typer.Option(help="print the Markdown latency table of this bundle directory and exit")
    ] = None,
    stage: Annotated[str, typer.Option(help="stage the --table reports: end_to_end, compute, overhead")] = "end_to_end",
    progress: Annotated[bool, typer.Option(help="show a progress bar")] = True,
) -> None:
    """Profile real torch kernels (the zoo or your model) into a bundle under OUT/<hardware-id>/."""
    console = Console(stderr=True)
    try:
        if table is not None:
            from simulator.formats.profile_bundle import load_bundle
            from simulator.profiling.table import markdown_table

            table_threads = _integers(threads, "--threads")
            if table_threads is not None and len(table_threads) > 1:
                raise typer.BadParameter("with --table give one thread count", param_hint="--threads")
            print(markdown_table(load_bundle(table), stage=stage, threads=table_threads[0] if table_threads else None))
            return
        if name is not None:  # the bundle's folder: OUT/<hardware-id>/<name>/
            path_component(name, "--name")
        _require_torch()
        from simulator.profiling import api
        from simulator.profiling.harness import HarnessSettings

        overrides = {
            "batch_sizes": _integers(batch_sizes, "--batch-sizes"),
            "threads": _integers(threads, "--threads"),
            "concurrency": _integers(concurrency, "--concurrency"),
            "serving_threads": serving_threads,
        }
        overrides = {key: value for key, value in overrides.items() if value is not None} | {"seed": seed}
        settings = HarnessSettings.quick(**overrides) if quick else HarnessSettings(**overrides)
        common = dict(device=device, settings=settings, out=out, int8_backend=int8_backend, progress=progress)
        arguments = sys.argv[2:] if sys.argv[1:2] == ["profile"] else sys.argv[1:]
        command = " ".join(["latsim", "profile", *arguments])
        if model is None and model_file is None:
            if input_shape is not None:
                raise ProfilingError("--input-shape describes your model's input: give --model or --model-file too")
            bundle = api.profile_zoo(
                families=_names(family) or api.FAMILY_NAMES,
                variants=_names(variant) or api.VARIANTS,
                name=name or "zoo",
                seq_len=seq_len,
                size=zoo_size,
                seed=seed,
                command=command,
                **common,
            )
        else:
            user_model = _user_model(family, model, model_file, input_shape, input_dtype, input_high, seed, name)
            variants = _names(variant) or ("fp32", "int8", "bf16", "fp16")
            bundle = api.profile_user_model(user_model, variants=variants, command=command, **common)
    except LatsimError as error:
        console.print(f"[red]error:[/red] {plain(str(error))}", highlight=False)
        raise typer.Exit(code=2) from None
    from simulator.profiling.table import markdown_table

    size_kib = sum(f.stat().st_size for f in bundle.path.iterdir()) / 1024
    console.print(plain(f"wrote {bundle.path} ({len(bundle.samples)} samples, {size_kib:.0f} KiB)"), highlight=False)
    print(markdown_table(bundle))


def _require_torch() -> None:
    try:
        import torch  # noqa: F401
    except ImportError:
        raise ProfilingError("profiling needs torch: pip install 'latsim[profile]'") from None


def _user_model(
    family: list[str] | None,
    model: str | None,
    model_file: Path | None,
    input_shape: str | None,
    input_dtype: str,
    input_high: int,
    seed: int,
    name: str | None,
):
    """The user's model from --model or --model-file, with a random example batch of --input-shape."""
    from simulator.profiling import user_models

    if model is not None and model_file is not None:
        raise ProfilingError("give either --model or --model-file, not both")
    if family:
        raise ProfilingError("--family picks zoo families; it does not apply to --model / --model-file")
    if input_shape is None:
        raise ProfilingError("your model needs --input-shape (batch dimension first), e.g. --input-shape 1,3,32,32")
    example = user_models.random_example(
        user_models.parse_shape(input_shape), user_models.parse_dtype(input_dtype), input_high, seed
    )
    if model is not None:
        return user_models.from_factory(model, example, name)
    return user_models.from_file(model_file, example, name)
