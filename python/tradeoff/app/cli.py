"""``tradeoff-eval``: the command line.

Commands: ``generate`` and ``score`` (corpora and their scores in a run directory), ``analyze``,
``report`` and ``recommend`` (the evidence and the decision), ``run`` (all of it from a TOML file
or the paper's presets), ``toy`` (the paper's toy experiment) and ``demo`` (the whole pipeline on
an exact world). Run as ``tradeoff-eval`` or ``python -m tradeoff`` (the form torchrun takes:
``torchrun --nproc-per-node N -m tradeoff generate ...``).

Options and their defaults come from the configuration sections (:mod:`tradeoff.stages.settings`),
so ``generate`` and ``score`` build the same sections as ``run CONFIG.toml`` and call the same
stage functions. A :class:`~tradeoff.errors.TradeoffError` (a user error) is printed as one line
on stderr with exit status 2; so are argparse's errors. Anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import ConfigError, TradeoffError, TradeoffWarning, check_seed
from ..stages.settings import (
    AnalysisSettings,
    GenerateSection,
    ModelsSection,
    PromptsSection,
    RunSection,
    ScoreSection,
    Section,
)

DESCRIPTION = """\
Measure, explain and choose the probability-quality trade-off of aligned language models.

Commands:
  generate   sample strings per prompt and adaptor configuration from the aligned model into a
             run directory (samples.parquet with log pi and log q per string); resumable;
             torchrun splits the work across processes
  score      score a run's strings: log p under the prior, re-scored log pi / log q, rewards
             (scores.parquet); resumable; torchrun splits the work across processes
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

Run it as tradeoff-eval or python -m tradeoff. Under torchrun:
  torchrun --nproc-per-node N -m tradeoff generate ...   (and score: each process takes every
  N-th batch; rank 0 merges). Give run directories as --run-dir there: torchrun reads --run as an
  abbreviation of its own --run-path.

See README.md and the examples/ folder.
"""

GENERATE_HELP = """\
Sample --samples-per-prompt strings for every prompt and every adaptor configuration from the
aligned model. Each configuration is an adaptor chain spec, e.g. ancestral, temperature=1.5,
top_p=0.9, "temperature=0.75,top_k=50" (applied in the written order). The run directory gets
manifest.json, one shard of --shard-size strings at a time under shards/generate/, and
samples.parquet. Within a shard, --batch-size strings are in flight and a finished string's slot
takes the next one (continuous batching); --max-batch-tokens bounds their memory. Starting the
same command again resumes an interrupted run and gives the same table; a string depends only on
the seed, its prompt id, sample index and configuration, never on the batch size or the number of
processes. Every setting is checked before any work; the manifest is written when work starts.
"""


SCORE_HELP = """\
Teacher-forced scores for every string of a run, into scores.parquet (samples.parquet is not
touched): logp_prior (with --prior), logp_aligned and logp_adapted re-scored (with --aligned; they
win over generate's in the analysis), reward (with --reward). When a scorer shares the
generator's tokenizer, the generated token ids are scored as they are; otherwise prompt and text
are tokenized together and split at the boundary. Strings that ended with EOS are scored with EOS.
Each scorer's work is cut into shards under shards/score-NAME/: run the same command again to
finish an interrupted scoring. A scorer already done with other settings is refused unless
--replace is given; scorers not named now are kept.
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
configuration's estimated means with 95% intervals next to their exact values, then the
string-level and corpus-level correlations of (log p, reward) with their intervals, the Simpson
check, and their exact values.

Worlds (--world):
  reversal     the default: the paper's phenomenon. The reward rewards predictable states and,
               within a state, rarer tokens: strings likelier under p score higher (string level
               > 0), while the corpora the adaptors draw trade prior likelihood for reward
               (corpus level < 0), and the Simpson check flags the reversal.
  independent  the first demo world: a reward drawn independently of the prior; both
               correlations are negative (no reversal).
"""


# --- parsing ------------------------------------------------------------------------------------

# Negative numbers, scientific notation included, are values, not options (argparse's own
# pattern misses -1e9).
_NEGATIVE = re.compile(r"^-(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$|^-(inf|nan)$", re.IGNORECASE)


class _Parser(argparse.ArgumentParser):
    """Errors as one line (with the command), no usage dump; negative numbers as values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = _NEGATIVE

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be an integer >= 1, got {value}")
    return value


def _seed(text: str) -> int:
    try:
        return check_seed(int(text))
    except (ValueError, TypeError):
        raise argparse.ArgumentTypeError(
            f"must be an integer in [0, 2**64), got {text!r}"
        ) from None


def _option(
    p: argparse.ArgumentParser, section: type[Section], key: str, *flags: str, **kwargs: Any
) -> None:
    """An option whose default and help come from the configuration section."""
    default = section.default(key)
    kwargs.setdefault("default", default)
    text = section.help(key)
    if default not in (None, False, [], ()):
        text += f" (default: {default})"
    p.add_argument(*(flags or (f"--{key.replace('_', '-')}",)), dest=key, help=text, **kwargs)


def _add_model_options(p: argparse.ArgumentParser) -> None:
    _option(p, ModelsSection, "dtype", choices=["float32", "float16", "bfloat16"])
    _option(p, ModelsSection, "device")
    _option(p, ModelsSection, "trust_remote_code", action="store_true")


def _add_run_dir(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument(
        "--run-dir",
        "--run",
        dest="run_dir",
        required=True,
        metavar="DIR",
        help=f"{what} (--run is an alias, except under torchrun)",
    )


def build_parser() -> argparse.ArgumentParser:
    from .demo import DEMO_WORLDS

    parser = _Parser(
        prog="tradeoff-eval",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"tradeoff {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    gen = commands.add_parser(
        "generate",
        help="sample corpora per adaptor configuration",
        description=GENERATE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _option(gen, ModelsSection, "aligned", "--aligned", required=True)
    _option(gen, PromptsSection, "source", "--prompts", required=True)
    _option(
        gen, GenerateSection, "adaptors", "--adaptors", required=True, nargs="+", metavar="SPEC"
    )
    _option(gen, GenerateSection, "samples_per_prompt", type=_positive, metavar="N")
    _option(gen, GenerateSection, "max_new_tokens", type=_positive, metavar="T")
    _option(gen, RunSection, "seed", type=_seed)
    gen.add_argument("--out", required=True, help="run directory (created or resumed)")
    _option(gen, PromptsSection, "template")
    _option(gen, GenerateSection, "batch_size", type=_positive, metavar="B")
    _option(gen, GenerateSection, "shard_size", type=_positive, metavar="N")
    _option(gen, GenerateSection, "max_batch_tokens", type=_positive, metavar="N")
    _option(gen, GenerateSection, "overlap", choices=["auto", "on", "off"])
    _option(gen, PromptsSection, "max_prompts", type=_positive, metavar="N")
    _option(gen, GenerateSection, "stop", "--stop", nargs="*", metavar="STR")
    _option(
        gen, GenerateSection, "eos_token_ids", "--eos-token-id", type=int, nargs="*", metavar="ID"
    )
    _option(gen, GenerateSection, "backend")
    _option(gen, GenerateSection, "tensor_parallel_size", type=_positive, metavar="K")
    _option(gen, RunSection, "semantics", choices=["corrected", "authors"])
    _add_model_options(gen)
    gen.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

    score = commands.add_parser(
        "score",
        help="score a run's strings under the prior, the aligned model and a reward",
        description=SCORE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_dir(score, "run directory written by generate")
    _option(score, ModelsSection, "prior", "--prior")
    _option(score, ScoreSection, "aligned", "--aligned")
    _option(score, ModelsSection, "reward", "--reward", metavar="SOURCE")
    _option(score, ScoreSection, "prior_context", choices=["formatted", "raw", "none"])
    _option(score, ScoreSection, "reward_template")
    _option(score, ScoreSection, "reward_max_length", type=_positive, metavar="N")
    _option(score, ScoreSection, "reward_normalize", action="store_true")
    _option(score, ScoreSection, "clamp_token_nll", type=float, metavar="C")
    _option(score, ScoreSection, "batch_size", type=_positive, metavar="B")
    _option(score, ScoreSection, "max_batch_tokens", type=_positive, metavar="N")
    _option(score, ScoreSection, "shard_size", type=_positive, metavar="N")
    score.add_argument(
        "--replace",
        action="store_true",
        help="score again, from scratch, a scorer already done with other settings",
    )
    _add_model_options(score)
    score.add_argument("--json", action="store_true", help="print a JSON summary on stdout")
    score.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")

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
        "95% bootstrap intervals; the IMH correction (acceptance, ESS, importance ESS, Pareto "
        "k-hat, Cramér's V) and its means, to the paper's target and to the globally normalised "
        "adaptor (imh_global); corpora resampled from the chain. Pooled: string- and corpus-level "
        "correlations (the corpus level's intervals resample configurations), the Simpson check, "
        "the implied beta, the trade-off line, the corpora typical for pi, per-prompt lines, and "
        "best-of-n when asked for. Writes summary.json. What cannot be computed (too few "
        "strings, constant input) is n/a, with its reason. The settings without an option here "
        "(typical_share, best_of_n, per_prompt_min_samples, ...) are the [analysis] section of "
        "a `tradeoff-eval run` configuration.",
    )
    _add_run_dir(analyze, "a scored run directory")
    for key in ("n_steps", "n_corpora", "corpus_size", "n_resamples"):
        _option(analyze, AnalysisSettings, key, type=_positive)
    _option(analyze, AnalysisSettings, "seed", type=_seed)
    analyze.add_argument("--json", action="store_true", help="print the summary on stdout")

    report = commands.add_parser(
        "report",
        help="figures and report.html for an analysed run",
        description="Writes figures/*.png and a self-contained report.html from summary.json.",
    )
    _add_run_dir(report, "an analysed run directory")
    report.add_argument("--json", action="store_true", help="print the report's path as JSON")

    rec = commands.add_parser(
        "recommend",
        help="which adaptor buys how much reward for how much likelihood",
        description="The Pareto frontier of an analysed run's configurations in (mean prior "
        "log-likelihood, mean reward), with 95% intervals; with a target, the configuration "
        "that meets it at the least cost, its exchange rate against ancestral sampling, and "
        "whether the choice is distinguishable from the next one. Configurations without "
        "finite means are listed as not compared.",
    )
    _add_run_dir(rec, "an analysed run directory (summary.json)")
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
        description="Checks every setting of every stage, then runs every stage that is not "
        "complete (generate resumes), then analyze and report. The configuration's sections and "
        "keys are documented in tradeoff.app.config; examples/demo.toml is the demo. --preset "
        "writes or runs the paper's settings; --set overrides one key of either.",
    )
    runp.add_argument("config", nargs="?", help="the TOML configuration file")
    runp.add_argument("--preset", choices=["paper-rlhf", "paper-dpo"], help="the paper's settings")
    runp.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="SECTION.KEY=VALUE",
        help="override a key (repeatable), e.g. --set generate.batch_size=32 or "
        "--set seed=1; the value is TOML (a bare word is a string)",
    )
    runp.add_argument(
        "--semantics",
        choices=["corrected", "authors"],
        help="corrected (the default) or authors (the published code's behaviour, for the "
        "paper's figures); the same as --set semantics=...",
    )
    runp.add_argument(
        "--dry-run", action="store_true", help="run the checks and print the plan only (offline)"
    )
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
    demo.add_argument(
        "--world",
        choices=DEMO_WORLDS,
        default="reversal",
        help="the world: reversal (the default; the paper's string- vs corpus-level reversal) "
        "or independent (a reward independent of the prior; no reversal)",
    )
    demo.add_argument("--json", action="store_true", help="print the summary on stdout")
    return parser


# --- sections from options ----------------------------------------------------------------------

# Options whose name is not the key's.
_FLAGS = {"source": "--prompts", "eos_token_ids": "--eos-token-id", "aligned": "--aligned"}


def _cli_label(key: str) -> str:
    return _FLAGS.get(key, f"--{key.replace('_', '-')}")


def _section(cls: type[Section], args: argparse.Namespace, keys: list[str], **values: Any) -> Any:
    given = {key: getattr(args, key) for key in keys}
    return cls.from_values({**given, **values}, _cli_label)


def _generate(args: argparse.Namespace) -> dict[str, Any]:
    from ..stages.generate import generate

    models = _section(ModelsSection, args, ["aligned", "dtype", "device", "trust_remote_code"])
    prompts = _section(PromptsSection, args, ["source", "max_prompts", "template"])
    generate_section = _section(
        GenerateSection,
        args,
        [
            "adaptors",
            "samples_per_prompt",
            "max_new_tokens",
            "batch_size",
            "shard_size",
            "max_batch_tokens",
            "overlap",
            "stop",
            "eos_token_ids",
            "backend",
            "tensor_parallel_size",
        ],
    )
    top = RunSection.from_values({"seed": args.seed, "semantics": args.semantics}, _cli_label)
    return generate(
        args.out,
        models=models,
        prompts=prompts,
        generate=generate_section,
        seed=top.seed,
        semantics=top.semantics,
        progress=False if args.no_progress else None,
    )


def _score(args: argparse.Namespace) -> dict[str, Any]:
    from ..stages.score import score

    models = _section(
        ModelsSection, args, ["prior", "reward", "dtype", "device", "trust_remote_code"]
    )
    score_section = _section(
        ScoreSection,
        args,
        [
            "prior_context",
            "reward_template",
            "reward_max_length",
            "reward_normalize",
            "clamp_token_nll",
            "batch_size",
            "max_batch_tokens",
            "shard_size",
            "aligned",
        ],
    )
    return score(
        args.run_dir,
        models=models,
        score=score_section,
        replace=args.replace,
        progress=False if args.no_progress else None,
    )


def _toy(args: argparse.Namespace) -> dict[str, Any]:
    from ..worlds.toy import ToySettings, run_toy, save_figure

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


def _analyze(args: argparse.Namespace) -> dict[str, Any]:
    from ..stages.analyze import analyze

    settings = _section(
        AnalysisSettings, args, ["n_steps", "n_corpora", "corpus_size", "n_resamples", "seed"]
    )
    summary = analyze(args.run_dir, settings=settings)
    if not args.json:
        _print_configs(summary.to_dict())
    return summary.to_dict()


def _report(args: argparse.Namespace) -> dict[str, Any]:
    from ..stages.report import write_report

    path = write_report(args.run_dir)
    if not args.json:
        print(f"report: {path}")
    return {"run": args.run_dir, "report": str(path)}


def _recommend(args: argparse.Namespace) -> dict[str, Any]:
    from ..rundir import RunDir
    from ..rundir.summary import read_summary
    from ..stages.recommend import recommend

    summary = read_summary(RunDir(args.run_dir).summary_path)
    result = recommend(
        summary,
        min_reward=args.min_reward,
        max_loglik_loss=args.max_loglik_loss,
        baseline=args.baseline,
    )
    if not args.json:
        print("Pareto frontier (mean log p, mean reward, 95% intervals):")
        for f in result["frontier"]:
            extra = ""
            if f.get("exchange_rate") is not None:
                gain, loss = f["reward_gain"]["value"], f["loglik_loss"]["value"]
                extra = (f"  {f['exchange_rate']:+.4g} reward per nat given up vs "
                         f"{result['baseline']}" if loss > 0 else
                         f"  {gain:+.4g} reward and {-loss:+.4g} nats of log p vs "
                         f"{result['baseline']}")  # fmt: skip
            print(
                f"  {f['config']:<34} {_fmt(f['mean_logp_prior'])}  {_fmt(f['mean_reward'])}{extra}"
            )
        print(f"within noise of the frontier: {', '.join(result['frontier_within_noise'])}")
        for n in result["not_compared"]:
            print(f"not compared: {n['config']} ({n['reason']})")
        if "verdict" in result:
            print(result["verdict"])
    return result


def _run(args: argparse.Namespace) -> dict[str, Any]:
    from .config import load_config, to_toml
    from .presets import preset, preset_dict
    from .run import plan, run_config

    if (args.config is None) == (args.preset is None):
        raise ConfigError("give a configuration file or --preset (one of them)")
    if args.write_config:
        if args.preset is None:
            raise ConfigError("--write-config writes a preset: give --preset")
        target = Path(args.write_config)
        if target.is_dir() or args.write_config.endswith(("/", "\\")):
            raise ConfigError(
                f"`--write-config` {args.write_config!r} is a directory; give the "
                "TOML file to write, e.g. paper.toml"
            )
        overrides = args.overrides + ([f"semantics={args.semantics}"] if args.semantics else [])
        raw = preset_dict(args.preset, overrides)
        preset(args.preset, overrides)  # the overrides are checked like the file
        from ..rundir import atomic_write_bytes

        try:
            atomic_write_bytes(target, to_toml(raw).encode("utf-8"))
        except OSError as error:
            raise ConfigError(
                f"`--write-config` {args.write_config!r} cannot be written ({error.strerror})"
            ) from None
        if not args.json:
            print(f"wrote {args.write_config}")
        return {"config": args.write_config, "preset": args.preset}
    overrides = args.overrides + ([f"semantics={args.semantics}"] if args.semantics else [])
    if args.preset:
        config = preset(args.preset, overrides)
    else:
        config = load_config(args.config, overrides)
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


def _demo(args: argparse.Namespace) -> dict[str, Any]:
    from .demo import coverage, run_demo

    summary = run_demo(
        args.out, samples=args.samples, seed=args.seed, world=args.world, progress=None
    )
    summary["coverage"] = coverage(summary)
    if not args.json:
        _print_configs(summary)
        _print_reversal(summary)
        print(
            f"{summary['coverage']:.0%} of the estimated means have the exact value in their "
            f"95% interval; {summary['seconds']:.1f} s; report: {summary['report']}"
        )
    return summary


# --- printing -------------------------------------------------------------------------------------


def _fmt(v: dict[str, Any] | None) -> str:
    """An estimate: value [low, high]; n/a when there is none (the reason is listed below)."""
    if not v or v.get("value") is None:
        return f"{'n/a':>30}"
    if v.get("low") is None or v.get("high") is None:
        return f"{v['value']:8.3f} {'[no interval]':>21}"
    return f"{v['value']:8.3f} [{v['low']:8.3f}, {v['high']:8.3f}]"


def _print_configs(data: dict[str, Any]) -> None:
    from ..rundir.summary import Summary

    summary = Summary.from_dict(data)
    if not summary.configs:
        print("no strings in this run: nothing to analyse per configuration")
    else:
        width = max(len(c.config) for c in summary.configs)
        header = f"{'configuration':<{width}}  {'mean reward [95%]':>30} {'exact':>8}  "
        print(header + f"{'mean log p [95%]':>30} {'exact':>8}")
        for c, raw in zip(summary.configs, data["configs"], strict=True):
            er = f"{c.exact['mean_reward']:8.3f}" if c.exact else f"{'–':>8}"
            ep = f"{c.exact['mean_logp_prior']:8.3f}" if c.exact else f"{'–':>8}"
            print(
                f"{c.config:<{width}}  {_fmt(raw['mean_reward']):>30} {er}  "
                f"{_fmt(raw['mean_logp_prior']):>30} {ep}"
            )
    string = summary.string_level.spearman if summary.string_level else None
    corpus = summary.corpus_level.spearman if summary.corpus_level else None

    def rho(c: Any) -> str:
        if c is None:
            return "n/a"
        return f"{c.statistic:.3f}" if c.statistic is not None else f"n/a ({c.reason})"

    best = data.get("best_of_n")
    if best and best.get("points"):
        # Best-of-n from the base configuration, in the same columns (cost: strings per output).
        names = [f"best-of-{p['n']} of {best['base']}, cost {p['cost']}" for p in best["points"]]
        width = max([len(c.config) for c in summary.configs] + [len(n) for n in names])
        for name, point in zip(names, best["points"], strict=True):
            print(
                f"{name:<{width}}  {_fmt(point['mean_reward']):>30} {'':>8}  "
                f"{_fmt(point['mean_logp_prior']):>30}"
            )
    print(
        f"string level Spearman(log p, reward) = {rho(string)}; corpus level "
        f"(IMH-resampled corpora) = {rho(corpus)}"
    )
    notes = [
        f"{c.config}: {c.mean_reward.reason}"
        for c in summary.configs
        if c.mean_reward.reason and not c.mean_reward.bounded
    ]
    notes += [f"{k.replace('_', ' ')}: {r}" for k, r in summary.reasons.items()]
    for note in notes:
        print(f"n/a  {note}")


def _print_reversal(data: dict[str, Any]) -> None:
    """The demo's verdict: string-level and corpus-level correlations with their intervals and
    the exact values, and the Simpson check."""
    from ..rundir.summary import Summary

    summary = Summary.from_dict(data)
    exact = data.get("exact_correlations") or {}

    def corr(c: Any) -> str:
        if c is None or c.statistic is None:
            return f"n/a ({c.reason})" if c is not None else "n/a"
        interval = f" [{c.low:.3f}, {c.high:.3f}]" if c.low is not None else " [no interval]"
        return f"{c.statistic:+.3f}{interval}"

    def known(key: str) -> str:
        value = exact.get(key)
        return f"{value:+.3f}" if value is not None else "–"

    for label, level, key, what in (
        ("string level", summary.string_level, "string_level_pearson", "exact"),
        ("corpus level", summary.corpus_level, "corpus_level_pearson", "limit"),
    ):
        if level is None:
            print(f"{label}: n/a")
            continue
        n = f"{level.n_corpora:,} corpora" if level.n_corpora else f"{level.n:,} strings"
        print(
            f"{label} ({n}): Spearman {corr(level.spearman)}, Pearson {corr(level.pearson)}; "
            f"{what} Pearson {known(key)}"
        )
    s = summary.simpson
    if s is not None:

        def num(v: float | None) -> str:
            return f"{v:+.3f}" if v is not None else "n/a"

        verdict = "yes" if s.reversal else "no"
        print(
            f"Simpson (Pearson): pooled {num(s.pooled)}, between configurations "
            f"{num(s.between)} (exact {known('between_pearson')}), median within "
            f"{num(s.within_median)}; reversal: {verdict}"
        )


def _one_line_warnings() -> None:
    """TradeoffWarnings as one line on stderr; other warnings as Python shows them."""
    show = warnings.showwarning

    def showwarning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> None:
        if issubclass(category, TradeoffWarning):
            print(f"tradeoff-eval: warning: {message}", file=sys.stderr)
        else:
            show(message, category, *args, **kwargs)

    warnings.showwarning = showwarning  # type: ignore[assignment]


COMMANDS: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "generate": _generate,
    "score": _score,
    "toy": _toy,
    "analyze": _analyze,
    "report": _report,
    "recommend": _recommend,
    "run": _run,
    "demo": _demo,
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stdout)
        return 0
    _one_line_warnings()
    try:
        summary = COMMANDS[args.command](args)
    except TradeoffError as error:
        message = " ".join(str(error).split())  # one line, whatever the message holds
        print(f"tradeoff-eval {args.command}: error: {message}", file=sys.stderr)
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
