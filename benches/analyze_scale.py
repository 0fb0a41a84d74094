"""Wall time of the whole ``analyze`` stage at the paper's analysis scale (issue 15: under 10 s).

Builds (once) the demo run, 35 configurations of the automaton world with ``--samples`` strings
each, then times :func:`tradeoff.stages.analyze.analyze` on it with the default settings (IMH
200,000 steps, 2,000 corpora of 200,000 strings per configuration, 2,000 bootstrap resamples):
the median of ``--repeats`` calls after one warm-up. ``--profile`` prints the cProfile of one call
instead (the 25 largest cumulative entries).

    python benches/analyze_scale.py --out /tmp/demo2000 --samples 2000
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
from pathlib import Path

from timing import median_seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/demo-analyze", help="the demo's directory")
    parser.add_argument("--samples", type=int, default=2000, help="strings per configuration")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()

    from tradeoff.app.demo import run_demo
    from tradeoff.stages.analyze import analyze

    run = Path(args.out) / "run"
    if not (run / "summary.json").is_file():
        run_demo(args.out, samples=args.samples, progress=False)
    if args.profile:
        profile = cProfile.Profile()
        profile.runcall(analyze, run)
        pstats.Stats(profile).sort_stats("cumulative").print_stats(25)
        return
    seconds = median_seconds(lambda: analyze(run), repeats=args.repeats)
    print(f"analyze {run}: median {seconds:.2f} s over {args.repeats} runs")


if __name__ == "__main__":
    main()
