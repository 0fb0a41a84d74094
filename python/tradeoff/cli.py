"""``tradeoff-eval``: the command line.

Commands: ``generate`` and ``score`` (corpora and their scores in a run directory), ``analyze``,
``report`` and ``recommend`` (the evidence and the decision), ``run`` (all of it from a TOML file
or the paper's presets), ``toy`` (the paper's toy experiment) and ``demo`` (the whole pipeline on
an exact world). Run as ``tradeoff-eval`` or ``python -m tradeoff.cli`` (the form torchrun takes:
``torchrun --nproc-per-node N -m tradeoff.cli generate ...``).
"""

from __future__ import annotations

import argparse
import json
import sys

from . import __version__

DESCRIPTION = """\
Measure, explain and choose the probability-quality trade-off of aligned language models.

Commands:
  generate   sample strings per prompt and adaptor configuration from the aligned model into a
             run directory (samples.parquet with log pi and log q per string); resumable;
             torchrun splits the work across processes
  score      add log p under the prior, re-scored log pi / log q, and rewards to a run
  toy        the paper's toy experiment (no model needed): the trade-off in a known world
  analyze    per-configuration means with intervals, IMH, resampled corpora, correlations
  report     figures and a self-contained report.html for an analysed run
  recommend  the Pareto frontier of reward vs prior log-likelihood, and the cheapest adaptor
             that meets a target
  run        every stage of an experiment described by a TOML file (or --preset paper-rlhf /
             paper-dpo): generate, score, analyze, report; --dry-run prints the plan offline
  demo       the whole pipeline on an exact automaton world, estimates next to the truth

The Rust adaptor engine and the corpus statistics are also a Python API:

  import tradeoff
  chain = tradeoff.AdaptorChain.parse("temperature=0.7,top_p=0.9")
  tradeoff.sample(logits, chain, seed=0, streams=..., steps=...)
  from tradeoff import stats   # correlations, bootstrap, IMH, resampled corpora

See README.md and the examples/ folder.
"""

GENERATE_HELP = """\
Sample --samples-per-prompt strings for every prompt and every adaptor configuration from the
aligned model. Each configuration is an adaptor chain spec, e.g. ancestral, temperature=1.5,
top_p=0.9, "temperature=0.75,top_k=50" (applied in the written order). The run directory gets
manifest.json, one shard per batch under shards/, and samples.parquet. Starting the same command
again resumes an interrupted run and gives the same table; a string depends only on the seed, its
prompt id, sample index and configuration, never on the batch size or the number of processes.
"""


SCORE_HELP = """\
Teacher-forced scores for every string of a run, added as columns of samples.parquet:
logp_prior (with --prior), logp_aligned and logp_adapted re-scored (with --aligned), reward (with
--reward). When a scorer shares the generator's tokenizer, the generated token ids are scored as
they are; otherwise prompt and text are tokenized together and split at the boundary. Strings that
ended with EOS are scored with EOS.
"""


TOY_HELP = """\
The paper's toy experiment: 1,000 outcomes, aligned p+ ~ Dirichlet(0.1) (numpy legacy seed 42),
prior p = softmax(p+^(1/42) + U(-0.42, 0.42)), reward r = log(p+ / p) (beta = 1, Z = 1); 1,000
corpora of 100,000 draws from p+; typical corpora have |H(p+) + mean log p+| < 0.001. Published:
H(p+) = 5.01, H(p) = 6.87, string level rho = 0.43, r = 0.49, corpus level (binned) about -0.92.
"""


DEMO_HELP = """\
Builds an automaton world (a prior automaton, an additive reward, the aligned model
pi = p exp(r / beta) / Z computed exactly, all saved as transformers models), then runs the real
pipeline on it: generate (7 adaptor families x 5 temperatures), score, analyze, report. Prints each
configuration's estimated means with 95% intervals next to their exact values.
"""


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    value = int(text)
    if not 0 <= value < 2**64:
        raise argparse.ArgumentTypeError(f"must be an integer in [0, 2**64), got {value}")
    return value


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dtype", default="float32", choices=["float32", "float16", "bfloat16"])
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N or auto (default: cpu)")
    p.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow models whose code lives in their repository (off by default)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tradeoff-eval",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeoff {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    gen = commands.add_parser(
        "generate",
        help="sample corpora per adaptor configuration",
        description=GENERATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    gen.add_argument("--aligned", required=True, help="aligned model: local directory or hub id")
    gen.add_argument(
        "--prompts",
        required=True,
        help="prompt file: .jsonl (objects with 'prompt' and optional 'id'), .parquet, text (one "
        "prompt per line), or hh-rlhf:PATH (the paper's selection from a local copy of HH-RLHF's "
        "test split)",
    )
    gen.add_argument(
        "--adaptors", required=True, nargs="+", metavar="SPEC", help="adaptor configurations"
    )
    gen.add_argument("--samples-per-prompt", type=_positive, default=1, metavar="N")
    gen.add_argument("--max-new-tokens", type=_positive, default=256, metavar="T")
    gen.add_argument("--seed", type=_seed, default=0)
    gen.add_argument("--out", required=True, help="run directory (created or resumed)")
    gen.add_argument(
        "--template",
        default="{prompt}",
        help='context for the aligned model, e.g. "Human: {prompt} Assistant:", or "chat" for '
        "the tokenizer's chat template (default: the prompt itself)",
    )
    gen.add_argument("--batch-size", type=_positive, default=16, metavar="B")
    gen.add_argument("--max-prompts", type=_positive, default=None, metavar="N")
    gen.add_argument("--stop", nargs="*", default=[], metavar="STR", help="stop strings")
    gen.add_argument(
        "--eos-token-id",
        type=int,
        nargs="*",
        default=None,
        metavar="ID",
        help="end-of-string token ids (default: the model's generation config)",
    )
    _add_model_options(gen)
    gen.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    score = commands.add_parser(
        "score",
        help="score a run's strings under the prior, the aligned model and a reward",
        description=SCORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("--run", required=True, help="run directory written by generate")
    score.add_argument("--prior", help="prior model (before alignment): directory or hub id")
    score.add_argument(
        "--aligned", help="aligned model to re-score log pi and log q with (text made elsewhere)"
    )
    score.add_argument(
        "--reward",
        metavar="SOURCE",
        help="reward: a model directory or hub id (sequence classification or safe-rlhf score "
        "head), implicit:BETA (beta * (log pi - log p)), or python:module:function",
    )
    score.add_argument(
        "--prior-context",
        default="formatted",
        choices=["formatted", "raw", "none"],
        help="what the prior conditions on: the aligned model's formatted prompt (default), the "
        "raw prompt, or nothing (BOS only, the paper's choice)",
    )
    score.add_argument(
        "--reward-template",
        default="{prompt}{response}",
        help='text the reward model reads, e.g. "Human: {prompt} Assistant: {response}", or chat',
    )
    score.add_argument("--reward-max-length", type=_positive, default=None, metavar="N")
    score.add_argument(
        "--clamp-token-nll",
        type=float,
        default=None,
        metavar="C",
        help="clip each token's negative log-likelihood to [0, C] in the sums (the paper: 25)",
    )
    score.add_argument("--batch-size", type=_positive, default=8, metavar="B")
    _add_model_options(score)
    score.add_argument("--json", action="store_true", help="print a JSON summary on stdout")

    toy = commands.add_parser(
        "toy",
        help="the paper's toy experiment",
        description=TOY_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    toy.add_argument("--n-outcomes", type=_positive, default=1000)
    toy.add_argument("--alpha", type=float, default=0.1, help="Dirichlet concentration of p+")
    toy.add_argument("--scaling", type=float, default=42.0, help="p = softmax(p+^(1/scaling) + U)")
    toy.add_argument("--noise", type=float, default=0.42, help="U is uniform on [-noise, noise]")
    toy.add_argument("--seed", type=int, default=42, help="numpy legacy seed of the world")
    toy.add_argument("--n-corpora", type=_positive, default=1000)
    toy.add_argument("--corpus-size", type=_positive, default=100_000)
    toy.add_argument("--tolerance", type=float, default=0.001, help="typicality tolerance (nats)")
    toy.add_argument("--bins", type=_positive, default=10, help="equal-width bins of mean log p")
    toy.add_argument("--per-bin", type=_positive, default=100, help="corpora resampled per bin")
    toy.add_argument(
        "--rng",
        default="fast",
        choices=["fast", "numpy-legacy"],
        help="fast: corpora drawn in Rust; numpy-legacy: the published draws, one by one (slow)",
    )
    toy.add_argument("--figure", metavar="PATH", help="write the paper's three panels as a PNG")
    toy.add_argument("--json", action="store_true", help="print a JSON summary on stdout")

    analyze = commands.add_parser(
        "analyze",
        help="analyse a scored run into summary.json",
        description="Per configuration: means of reward, log p, log pi, log q and length with "
        "95%% bootstrap intervals; the IMH correction (acceptance, ESS, Cramér's V) and its "
        "means; corpora resampled from the chain; pooled string- and corpus-level correlations, "
        "the Simpson check, the implied beta and the trade-off line. Writes summary.json.",
    )
    analyze.add_argument("--run", required=True, help="a scored run directory")
    _add_analysis_options(analyze)
    analyze.add_argument("--json", action="store_true", help="print the summary on stdout")

    report = commands.add_parser(
        "report",
        help="figures and report.html for an analysed run",
        description="Writes figures/*.png and a self-contained report.html from summary.json.",
    )
    report.add_argument("--run", required=True, help="an analysed run directory")
    report.add_argument("--json", action="store_true", help="print the report's path as JSON")

    rec = commands.add_parser(
        "recommend",
        help="which adaptor buys how much reward for how much likelihood",
        description="The Pareto frontier of an analysed run's configurations in (mean prior "
        "log-likelihood, mean reward), with 95%% intervals; with a target, the configuration "
        "that meets it at the least cost, its exchange rate against ancestral sampling, and "
        "whether the choice is distinguishable from the next one.",
    )
    rec.add_argument("--run", required=True, help="an analysed run directory (summary.json)")
    target = rec.add_mutually_exclusive_group()
    target.add_argument("--min-reward", type=float, metavar="R", help="mean reward at least R")
    target.add_argument(
        "--max-loglik-loss",
        type=float,
        metavar="L",
        help="mean prior log-likelihood at most L nats below ancestral sampling",
    )
    rec.add_argument("--baseline", default="ancestral", help="configuration to compare against")
    rec.add_argument("--json", action="store_true", help="print the recommendation as JSON")

    runp = commands.add_parser(
        "run",
        help="run an experiment from a TOML configuration",
        description="Runs every stage that is not complete (generate resumes), then analyze and "
        "report. The configuration's sections and keys are documented in tradeoff.pipeline; "
        "examples/demo.toml is the demo. --preset writes or runs the paper's settings.",
    )
    runp.add_argument("config", nargs="?", help="the TOML configuration file")
    runp.add_argument("--preset", choices=["paper-rlhf", "paper-dpo"], help="the paper's settings")
    runp.add_argument("--dry-run", action="store_true", help="validate and print the plan only")
    runp.add_argument("--write-config", metavar="PATH", help="write the preset as TOML and stop")
    runp.add_argument("--json", action="store_true", help="print the plan or summary as JSON")

    demo = commands.add_parser(
        "demo",
        help="the whole pipeline on an exact automaton world",
        description=DEMO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument("--out", default="demo-run", help="output directory (default: demo-run)")
    demo.add_argument("--samples", type=_positive, default=400, help="strings per configuration")
    demo.add_argument("--seed", type=_seed, default=0)
    demo.add_argument("--json", action="store_true", help="print the summary on stdout")
    return parser


def _add_analysis_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-steps", type=_positive, default=200_000, help="IMH steps per config")
    p.add_argument("--n-corpora", type=_positive, default=2_000, help="resampled corpora")
    p.add_argument("--corpus-size", type=_positive, default=200_000, help="strings per corpus")
    p.add_argument("--n-resamples", type=_positive, default=2_000, help="bootstrap resamples")
    p.add_argument("--seed", type=_seed, default=0)


def _generate(args: argparse.Namespace) -> dict:
    from .generate import generate_run

    return generate_run(
        args.out,
        aligned=args.aligned,
        prompts=args.prompts,
        adaptors=args.adaptors,
        samples_per_prompt=args.samples_per_prompt,
        max_new_tokens=args.max_new_tokens,
        seed=args.seed,
        template=args.template,
        batch_size=args.batch_size,
        dtype=args.dtype,
        device=args.device,
        stop_strings=args.stop,
        eos_token_ids=args.eos_token_id,
        max_prompts=args.max_prompts,
        trust_remote_code=args.trust_remote_code,
        progress=False if args.no_progress else None,
    )


def _score(args: argparse.Namespace) -> dict:
    from .score import score_run

    return score_run(
        args.run,
        prior=args.prior,
        aligned=args.aligned,
        reward=args.reward,
        prior_context=args.prior_context,
        reward_template=args.reward_template,
        reward_max_length=args.reward_max_length,
        clamp_token_nll=args.clamp_token_nll,
        batch_size=args.batch_size,
        dtype=args.dtype,
        device=args.device,
        trust_remote_code=args.trust_remote_code,
    )


def _toy(args: argparse.Namespace) -> dict:
    from .worlds.toy import ToySettings, run_toy, save_figure

    settings = ToySettings(
        n_outcomes=args.n_outcomes,
        alpha=args.alpha,
        scaling=args.scaling,
        noise=args.noise,
        seed=args.seed,
        n_corpora=args.n_corpora,
        corpus_size=args.corpus_size,
        tolerance=args.tolerance,
        bins=args.bins,
        per_bin=args.per_bin,
        rng=args.rng,
    )
    summary, arrays = run_toy(settings)
    if args.figure:
        save_figure(summary, arrays, args.figure)
        summary["figure"] = args.figure
    if not args.json:
        rows = [
            ("H(p+), entropy of the aligned distribution", "entropy_aligned", "5.01"),
            ("H(p), entropy of the prior", "entropy_prior", "6.87"),
            ("string level Spearman(log p, r)", "string_spearman", "0.43"),
            ("string level Pearson(log p, r)", "string_pearson", "0.49"),
            ("corpus level Spearman, typical corpora", "corpus_spearman_typical", ""),
            ("corpus level Pearson, typical corpora", "corpus_pearson_typical", ""),
            ("corpus level Spearman, binned resample", "corpus_spearman_binned", "about -0.92"),
            ("corpus level Pearson, binned resample", "corpus_pearson_binned", "about -0.92"),
        ]
        print(f"{'quantity':<45} {'value':>8}  published")
        for label, key, published in rows:
            print(f"{label:<45} {summary[key]:>8.3f}  {published}")
        figure = f"; figure {args.figure}" if args.figure else ""
        print(
            f"{summary['n_typical']} of {summary['n_corpora']} corpora typical; "
            f"rng {summary['rng']}; {summary['seconds']:.2f} s{figure}"
        )
    return summary


def _analyze(args: argparse.Namespace) -> dict:
    from .analysis import AnalysisSettings, analyze_run

    settings = AnalysisSettings(
        n_steps=args.n_steps,
        n_corpora=args.n_corpora,
        corpus_size=args.corpus_size,
        n_resamples=args.n_resamples,
        seed=args.seed,
    )
    summary = analyze_run(args.run, settings=settings)
    if not args.json:
        _print_configs(summary)
    return summary


def _report(args: argparse.Namespace) -> dict:
    from .report import write_report

    path = write_report(args.run)
    if not args.json:
        print(f"report: {path}")
    return {"run": args.run, "report": str(path)}


def _recommend(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from .recommend import recommend

    path = Path(args.run) / "summary.json"
    if not path.exists():
        raise FileNotFoundError(
            f"{path} does not exist; run `tradeoff-eval analyze --run {args.run}` first"
        )
    summary = json.loads(path.read_text(encoding="utf-8"))
    result = recommend(
        summary,
        min_reward=args.min_reward,
        max_loglik_loss=args.max_loglik_loss,
        baseline=args.baseline,
    )
    if not args.json:
        print("Pareto frontier (mean log p, mean reward, 95% intervals):")
        for f in result["frontier"]:
            rate = f.get("exchange_rate")
            extra = f"  {rate:+.4g} reward per nat vs {result['baseline']}" if rate else ""
            print(
                f"  {f['config']:<34} {_fmt(f['mean_logp_prior'])}  {_fmt(f['mean_reward'])}{extra}"
            )
        print(f"within noise of the frontier: {', '.join(result['frontier_within_noise'])}")
        if "verdict" in result:
            print(result["verdict"])
    return result


def _run(args: argparse.Namespace) -> dict:
    from pathlib import Path

    from .pipeline import PRESETS, load_config, plan, preset, run_config, to_toml

    if (args.config is None) == (args.preset is None):
        raise ValueError("give a configuration file or --preset (one of them)")
    if args.write_config:
        if args.preset is None:
            raise ValueError("--write-config writes a preset: give --preset")
        Path(args.write_config).write_text(to_toml(PRESETS[args.preset]), encoding="utf-8")
        if not args.json:
            print(f"wrote {args.write_config}")
        return {"config": args.write_config, "preset": args.preset}
    config = preset(args.preset) if args.preset else load_config(args.config)
    if args.dry_run:
        result = plan(config)
        if not args.json:
            print(f"plan for {result['config']} -> {result['out']}")
            print(f"  prompts: {result['prompts']['count']} ({result['prompts']['status']})")
            print(f"  configurations: {result['configurations']}; strings: {result['strings']:,}")
            print(f"  generated tokens, at most: {result['generated_tokens_at_most']:,}")
            for model, passes in result["forward_passes"].items():
                print(f"  forward passes, {model}: {passes:,}")
            for role, status in result["models"].items():
                print(f"  model {role}: {status}")
            print(f"  IMH steps: {result['imh_steps']:,}; resampled corpora: {result['corpora']:,}")
        return result
    summary = run_config(config)
    if not args.json:
        _print_configs(summary)
        print(f"report: {summary['report']}")
    return summary


def _demo(args: argparse.Namespace) -> dict:
    from .demo import coverage, run_demo

    summary = run_demo(args.out, samples=args.samples, seed=args.seed, progress=None)
    summary["coverage"] = coverage(summary)
    if not args.json:
        _print_configs(summary)
        print(
            f"{summary['coverage']:.0%} of the estimated means have the exact value in their "
            f"95% interval; {summary['seconds']:.1f} s; report: {summary['report']}"
        )
    return summary


def _fmt(v: dict | None) -> str:
    if not v or v.get("value") is None:
        return "–"
    return f"{v['value']:8.3f} [{v['low']:8.3f}, {v['high']:8.3f}]"


def _print_configs(summary: dict) -> None:
    width = max(len(c["config"]) for c in summary["configs"])
    header = f"{'configuration':<{width}}  {'mean reward [95%]':>30} {'exact':>8}  "
    print(header + f"{'mean log p [95%]':>30} {'exact':>8}")
    for c in summary["configs"]:
        exact = c.get("exact")
        er = f"{exact['mean_reward']:8.3f}" if exact else f"{'–':>8}"
        ep = f"{exact['mean_logp_prior']:8.3f}" if exact else f"{'–':>8}"
        print(
            f"{c['config']:<{width}}  {_fmt(c['mean_reward']):>30} {er}  "
            f"{_fmt(c['mean_logp_prior']):>30} {ep}"
        )
    s, k = summary["string_level"], summary.get("corpus_level", {})
    rho = (k.get("spearman") or {}).get("statistic")
    print(
        f"string level Spearman(log p, reward) = {s['spearman']['statistic']:.3f}; corpus level "
        f"(IMH-resampled corpora) = {rho if rho is None else round(rho, 3)}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    try:
        commands = {"generate": _generate, "score": _score, "toy": _toy, "analyze": _analyze,
                    "report": _report, "recommend": _recommend, "run": _run,
                    "demo": _demo}  # fmt: skip
        summary = commands[args.command](args)
    except (ValueError, FileNotFoundError) as error:
        print(f"tradeoff-eval {args.command}: error: {error}", file=sys.stderr)
        return 2
    if summary.get("rank", 0) != 0:
        return 0  # under torchrun, rank 0 reports for the run
    if args.json:
        print(json.dumps(summary))
    elif args.command in ("generate", "score"):
        print(f"{args.command}: {summary['strings']} strings in {summary['run']}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
