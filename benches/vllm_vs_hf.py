"""The vllm backend on a GPU (issue 14's check): exactness and throughput.

Steps (``benches/gpu_vllm.sh`` runs them in order, each engine in its own process, since a vLLM
engine takes most of the GPU's memory):

``build DIR``
    A ~1B-parameter Llama shape (16 layers x 2048, V = 32,000) with random weights, saved with
    its tokenizer in DIR/model, and 64 prompts in DIR/prompts.txt. No download.
``exact DIR``
    Both backends (``--backend hf`` and ``--backend vllm``) generate the paper's seven families
    at two temperatures (bf16) into DIR/run-hf and DIR/run-vllm; each run is then re-scored by
    teacher forcing (``tradeoff-eval score --aligned``), and the per-string differences of
    log pi and log q between generate's record and the re-scoring are reported (median, p99,
    max; target: within 1e-2 nats in bf16), with the share of strings equal across backends.
``speed DIR --engine native|tradeoff|hf``
    Tokens per second at batch 128 with top-p 0.9 (temperature 1), strings of fixed length:
    vLLM's own sampler (``native``), vLLM with tradeoff's processor (``tradeoff``), and the HF
    backend (``hf``). For ``tradeoff`` also the processor's seconds (the copy of the rows to the
    host, the draw, the forcing) per step, from ``$TRADEOFF_PROCESSOR_TIMING``, against the
    step's time: a device-resident path is worth it only if the copy is >10% of a step.
``table DIR``
    The Markdown table for benches/RESULTS.md from the files the steps left in DIR.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

FAMILIES = ["ancestral", "top_k=50", "top_k=30", "top_p=0.9", "top_p=0.95", "typical=0.9",
            "eta=0.0009"]  # fmt: skip
TEMPERATURES = [0.75, 1.25]
VOCAB = 32_000
TEMPLATE = "Human: {prompt} Assistant:"


def build(out: Path) -> None:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"<pad>": 0, "<bos>": 1, "<eos>": 2}
    vocab.update({f"w{i}": i + 3 for i in range(VOCAB - 3)})
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<pad>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>"
    )
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB, hidden_size=2048, intermediate_size=5632, num_hidden_layers=16,
        num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=2048,
        bos_token_id=1, eos_token_id=2, pad_token_id=0, torch_dtype="bfloat16",
    )  # fmt: skip
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    # Random weights give flat rows; a larger head spreads them, as a trained model's are.
    with torch.no_grad():
        model.lm_head.weight.mul_(8.0)
    (out / "model").mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out / "model")
    tokenizer.save_pretrained(out / "model")
    g = torch.Generator().manual_seed(1)
    lines = []
    for _ in range(64):
        n = int(torch.randint(8, 48, (1,), generator=g))
        words = torch.randint(3, VOCAB, (n,), generator=g).tolist()
        lines.append(" ".join(f"w{w - 3}" for w in words))
    (out / "prompts.txt").write_text("\n".join(lines) + "\n")
    n_params = sum(p.numel() for p in model.parameters())
    print(f"built {n_params / 1e9:.2f}B parameters in {out / 'model'}")


def cli(*args: object) -> None:
    subprocess.run([sys.executable, "-m", "tradeoff", *map(str, args)], check=True)


def specs() -> list[str]:
    out = []
    for t in TEMPERATURES:
        for family in FAMILIES:
            out.append(f"temperature={t}" if family == "ancestral" else f"temperature={t},{family}")
    return out


def compare(run: Path) -> tuple[dict[str, dict[str, float]], dict[tuple, list[int]]]:
    """|generate's log pi / log q - the re-scoring's| per string (and per token), and each
    string's tokens."""
    import numpy as np
    import pyarrow.parquet as pq

    samples_t = pq.read_table(run / "samples.parquet").to_pylist()
    scores_t = {(r["prompt_id"], r["config"], r["sample_index"]): r
                for r in pq.read_table(run / "scores.parquet").to_pylist()}  # fmt: skip
    stats = {}
    for column in ("logp_aligned", "logp_adapted"):
        diffs, per_token = [], []
        for r in samples_t:
            s = scores_t[(r["prompt_id"], r["config"], r["sample_index"])]
            a, b = r[column], s.get(column)
            if b is None or not np.isfinite(a) or not np.isfinite(b):
                continue
            diffs.append(abs(a - b))
            ta, tb = r.get(f"token_{column}"), s.get(f"token_{column}")
            if ta and tb and len(ta) == len(tb):
                per_token.extend(abs(x - y) for x, y in zip(ta, tb, strict=True))
        d, t = np.array(diffs), np.array(per_token or [np.nan])
        stats[column] = {
            "strings": len(diffs),
            "median": float(np.median(d)), "p99": float(np.quantile(d, 0.99)),
            "max": float(d.max()), "token_p99": float(np.nanquantile(t, 0.99)),
            "token_max": float(np.nanmax(t)),
            "within_1e-2": float(np.mean(d <= 1e-2)),
        }  # fmt: skip
    tokens = {(r["prompt_id"], r["config"], r["sample_index"]): r["token_ids"] for r in samples_t}
    return stats, tokens


def exact(out: Path, prompts: int, samples: int, new_tokens: int) -> None:
    import numpy as np

    model = out / "model"
    result: dict[str, object] = {}
    texts = {}
    for backend in ("hf", "vllm"):
        run = out / f"run-{backend}"
        cli("generate", "--aligned", model, "--prompts", out / "prompts.txt", "--adaptors",
            *specs(), "--samples-per-prompt", samples, "--max-new-tokens", new_tokens,
            "--max-prompts", prompts, "--template", TEMPLATE, "--seed", 0, "--dtype", "bfloat16",
            "--device", "cuda", "--batch-size", 128, "--backend", backend, "--out", run,
            "--no-progress")  # fmt: skip
        cli("score", "--run", run, "--aligned", model, "--dtype", "bfloat16", "--device", "cuda")
        stats, tokens = compare(run)
        result[backend] = stats
        texts[backend] = tokens
    same = [texts["hf"][k] == texts["vllm"].get(k) for k in texts["hf"]]
    result["same_strings_hf_vllm"] = float(np.mean(same))
    (out / "exact.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


def speed(out: Path, engine: str, batch: int, new_tokens: int, repeats: int) -> None:
    import torch

    model = str(out / "model")
    prompts = (out / "prompts.txt").read_text().split("\n")[:64]
    n_strings = 2 * batch
    texts = [TEMPLATE.format(prompt=prompts[i % len(prompts)]) for i in range(n_strings)]
    info: dict[str, object] = {"engine": engine, "batch": batch, "new_tokens": new_tokens}
    if engine == "hf":
        from tradeoff.generation import GenerationSettings, Prompt, work_items
        from tradeoff.generation.hf import Generator
        from tradeoff.models import load_causal_lm

        lm = load_causal_lm(model, dtype="bfloat16", device="cuda")
        ps = [Prompt(f"p{i}", prompts[i % len(prompts)]) for i in range(n_strings)]
        settings = GenerationSettings(max_new_tokens=new_tokens, seed=0, template=TEMPLATE,
                                      eos_token_ids=(VOCAB - 1,), batch_size=batch)  # fmt: skip
        gen = Generator(lm.model, lm.tokenizer, ps, ["top_p=0.9"], settings)
        items = work_items(len(ps), 1, 1)

        def run() -> int:
            return sum(r["n_tokens"] for r in gen.run_batch(items))
    else:
        from vllm import LLM, SamplingParams, TokensPrompt

        from tradeoff.generation import GenerationSettings, Prompt, work_items
        from tradeoff.generation.vllm_backend import PROCESSOR, VllmGenerator
        from tradeoff.models import load_tokenizer

        kwargs = dict(model=model, dtype="bfloat16", max_num_seqs=batch, max_model_len=2048,
                      generation_config="vllm", seed=0)  # fmt: skip
        if engine == "tradeoff":
            kwargs["logits_processors"] = [PROCESSOR]
            os.environ["TRADEOFF_PROCESSOR_TIMING"] = str(out / "processor-timing.json")
        llm = LLM(**kwargs)
        if engine == "native":
            tokenizer = load_tokenizer(model)
            ids = [tokenizer(t)["input_ids"] for t in texts]
            params = SamplingParams(temperature=1.0, top_p=0.9, max_tokens=new_tokens,
                                    ignore_eos=True, detokenize=False)  # fmt: skip

            def run() -> int:
                done = llm.generate([TokensPrompt(prompt_token_ids=i) for i in ids], params,
                                    use_tqdm=False)  # fmt: skip
                return sum(len(o.outputs[0].token_ids) for o in done)
        else:
            from tradeoff.generation.vllm_backend import _VllmEngine

            ps = [Prompt(f"p{i}", prompts[i % len(prompts)]) for i in range(n_strings)]
            settings = GenerationSettings(max_new_tokens=new_tokens, seed=0, template=TEMPLATE,
                                          eos_token_ids=(VOCAB - 1,), batch_size=batch)  # fmt: skip
            gen = VllmGenerator(load_tokenizer(model), ps, ["top_p=0.9"], settings,
                                engine=_VllmEngine(llm), max_positions=2048)  # fmt: skip
            items = work_items(len(ps), 1, 1)

            def run() -> int:
                return sum(r["n_tokens"] for r in gen.run_batch(items))

    run()  # warm-up
    rates = []
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        tokens = run()
        torch.cuda.synchronize()
        rates.append(tokens / (time.perf_counter() - start))
    rates.sort()
    info["tok_per_s"] = rates[len(rates) // 2]
    info["rates"] = rates
    timing_path = out / "processor-timing.json"
    if engine == "tradeoff" and timing_path.exists():
        t = json.loads(timing_path.read_text())
        # A step draws about `batch` rows: the step's seconds from the rate.
        step_s = batch / info["tok_per_s"]
        info["processor"] = {k: t[k] / t["calls"] for k in ("copy_s", "draw_s", "force_s")}
        info["processor"]["step_s"] = step_s
        info["processor"]["rows_per_call"] = t["rows"] / t["calls"]
    (out / f"speed-{engine}.json").write_text(json.dumps(info))
    print(json.dumps(info))


def table(out: Path) -> None:
    print("| check | figure | target |")
    print("|---|---|---|")
    exact_path = out / "exact.json"
    if exact_path.exists():
        result = json.loads(exact_path.read_text())
        for backend in ("hf", "vllm"):
            for column in ("logp_aligned", "logp_adapted"):
                s = result[backend][column]
                print(f"| {backend}: \\|{column} - re-scored\\| per string, median / p99 / max "
                      f"({s['strings']} strings) | {s['median']:.2e} / {s['p99']:.2e} / "
                      f"{s['max']:.2e} (per token p99 {s['token_p99']:.2e}); "
                      f"{s['within_1e-2']:.1%} within 1e-2 | <= 1e-2 nats |")  # fmt: skip
        print(
            f"| strings equal between the backends | {result['same_strings_hf_vllm']:.1%} | "
            "(bf16 kernels differ: equal up to near-ties) |"
        )
    speeds = {}
    for engine in ("native", "tradeoff", "hf"):
        path = out / f"speed-{engine}.json"
        if path.exists():
            speeds[engine] = json.loads(path.read_text())["tok_per_s"]
            print(f"| tokens/s, batch 128, top-p 0.9: {engine} | {speeds[engine]:.0f} | |")
            proc = json.loads(path.read_text()).get("processor")
            if proc:
                share = proc["copy_s"] / proc["step_s"]
                print(
                    f"| processor per step: copy / draw / force ms (step {proc['step_s'] * 1e3:.1f}"
                    f" ms, {proc['rows_per_call']:.0f} rows) | {proc['copy_s'] * 1e3:.2f} / "
                    f"{proc['draw_s'] * 1e3:.2f} / {proc['force_s'] * 1e3:.2f}; copy "
                    f"{share:.0%} of a step | copy <= 10% (else a device-resident path) |"
                )
    if "tradeoff" in speeds and "native" in speeds:
        print(
            f"| vllm backend / vLLM native | {speeds['tradeoff'] / speeds['native']:.2f}x | "
            ">= 0.8x |"
        )
    if "tradeoff" in speeds and "hf" in speeds:
        print(f"| vllm backend / hf backend | {speeds['tradeoff'] / speeds['hf']:.2f}x | >= 3x |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("step", choices=["build", "exact", "speed", "table"])
    parser.add_argument("dir", type=Path)
    parser.add_argument("--engine", choices=["native", "tradeoff", "hf"], default="tradeoff")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.dir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.step == "build":
        build(args.dir)
    elif args.step == "exact":
        exact(args.dir, args.prompts, args.samples, args.new_tokens)
    elif args.step == "speed":
        speed(args.dir, args.engine, args.batch_size, args.new_tokens, args.repeats)
    else:
        table(args.dir)


if __name__ == "__main__":
    main()
