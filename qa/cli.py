"""`qa index | ask | serve | eval | train | faq | bench | feedback`: parse, call the core, print.

Heavy libraries are imported inside the commands that need them, so `qa --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from qa.settings import Settings

EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_BROKEN_PIPE = 141  # what a shell reports for a process that SIGPIPE ended (128 + 13)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        seeds_dir=getattr(args, "seeds", None),
        index_dir=getattr(args, "index", None),
        top_k=getattr(args, "top_k", None),
        host=getattr(args, "host", None),
        port=getattr(args, "port", None),
        chroma_url=getattr(args, "chroma_url", None),
        threads=getattr(args, "threads", None),
        rate_limit=getattr(args, "rate_limit", None),
    )


def _fail(message: str, code: int) -> int:
    print(f"qa: {message}", file=sys.stderr)
    return code


def cmd_index(args: argparse.Namespace) -> int:
    """Build and publish a new index of the corpus."""
    from tqdm import tqdm

    from qa.encoders import default_embedder
    from qa.errors import IndexUnavailable
    from qa.index.build import build_index, progress_lines

    s = _settings(args)
    if args.if_missing:
        from qa.index import builds

        published = builds.current_build_id_or_none(s.index_dir)
        if published is not None:
            print(f"{s.index_dir} already serves build {published}; not rebuilt", file=sys.stderr)
            return 0
    bars: dict[str, Any] = {}

    def show_bar(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(
                total=total,
                desc=stage,
                unit="item",
                file=sys.stderr,
                disable=args.quiet,
                leave=False,
            )
        bar.total = total
        bar.n = done
        bar.refresh()

    # Bars on a terminal (none with -q); in a log file, a line per quarter of each stage.
    tty = sys.stderr.isatty()
    progress = show_bar if args.quiet or tty else progress_lines(sys.stderr)
    print(f"Indexing {s.seeds_dir} into {s.index_dir}", file=sys.stderr)
    try:
        report = build_index(
            s.seeds_dir, s.index_dir, default_embedder(), chroma_url=s.chroma_url, progress=progress
        )
    except IndexUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    finally:
        for bar in bars.values():
            bar.close()
    if args.json:
        print(json.dumps(report.to_dict(), indent=1))
        return 0
    print(f"{'file':32} {'status':8} {'passages':>8} {'tokens':>7} {'embedded':>8}  reason")
    for f in report.files:
        print(
            f"{f.name[:32]:32} {f.status:8} {f.passages:8} {f.tokens:7} {f.embedded:8}  {f.reason}"
        )
    print(
        f"build {report.build_id}: {report.passages} passages, {report.embedded} texts embedded, "
        f"{report.reused} reused, {report.seconds:.1f} s"
    )
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer one question (or, with no question, a prompt loop)."""
    from qa.ask.render import answer_to_text
    from qa.ask.service import QAService
    from qa.errors import IndexUnavailable, QuestionError

    s = _settings(args)
    service = QAService(s)
    questions = [args.question] if args.question is not None else None
    color = sys.stdout.isatty() and not args.json
    try:
        if questions is None:
            return _prompt_loop(service, args.top_k, color)
        answer = service.ask(questions[0], args.top_k)
    except QuestionError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except IndexUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(answer_to_text(answer, color=color))
    return 0


def _prompt_loop(service: Any, top_k: int | None, color: bool) -> int:
    """A conversation: each question is asked after the earlier ones (`/new` starts over)."""
    from qa.ask.followup import MAX_TURNS, Turn
    from qa.ask.render import answer_to_text
    from qa.errors import QuestionError

    service.ready()
    print(
        "Ask a question about the corpus; follow-up questions may refer to earlier ones.\n"
        "/new starts a new conversation; an empty line or Ctrl-D quits."
    )
    history: list[Turn] = []
    while True:
        try:
            q = input("? ")
        except (EOFError, KeyboardInterrupt):
            print()
            return 0
        if not q.strip():
            return 0
        if q.strip().lower() in ("/new", "/reset", "/clear"):
            history = []
            print("(new conversation)")
            continue
        try:
            answer = service.ask(q, top_k, history[-MAX_TURNS:])
        except QuestionError as exc:
            print(f"qa: {exc}", file=sys.stderr)
            continue
        sys.stdout.write(answer_to_text(answer, color=color) + "\n")
        cited = tuple((c.doc_id, c.start, c.end) for c in answer.citations)
        history.append(Turn(q, answer.answer, cited))


def cmd_serve(args: argparse.Namespace) -> int:
    """Serve the chat page and the JSON API (building the index first if there is none)."""
    from qa.errors import IndexUnavailable, PortUnavailable
    from qa.web.server import serve

    try:
        return serve(_settings(args))
    except (IndexUnavailable, PortUnavailable) as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)


def cmd_feedback_export(args: argparse.Namespace) -> int:
    """Write the collected feedback as evaluation questions (JSON Lines)."""
    from qa.errors import FeedbackUnavailable, IndexUnavailable
    from qa.feedback import export_file

    try:
        summary = export_file(_settings(args), args.out)
    except (IndexUnavailable, FeedbackUnavailable) as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    print(summary.describe(), file=sys.stderr)
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Measure the system on question sets (the shipped ones by default) and report."""
    from tqdm import tqdm

    from qa.errors import IndexUnavailable, QuestionSetError
    from qa.eval.evaluate import evaluate
    from qa.eval.gate import ACCEPTED_FILE, write_accepted
    from qa.eval.report import markdown, write_reports

    if args.write_baseline and args.questions:
        return _fail("--write-baseline records the shipped sets; drop --questions", EXIT_USAGE)
    s = _settings(args)

    def bar(name: str, total: int) -> Any:
        return tqdm(
            total=total, desc=name, unit="q", file=sys.stderr, disable=args.quiet, leave=False
        )

    try:
        ev = evaluate(
            s, args.questions, baseline=args.baseline, calibrate=args.calibrate, progress=bar
        )
    except QuestionSetError as exc:
        for problem in exc.problems:
            print(f"qa: {problem}", file=sys.stderr)
        return _fail("question set refused; no question was run", EXIT_USAGE)
    except IndexUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    if args.out:
        for path in write_reports(ev, args.out):
            print(f"wrote {path}", file=sys.stderr)
    if args.write_baseline:
        write_accepted(ev)
        print(f"wrote {ACCEPTED_FILE}", file=sys.stderr)
    if args.json:
        print(json.dumps(ev.to_dict(), ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(markdown(ev))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    """Measure speed in one run and judge it by ratios (see qa/bench/)."""
    from qa.bench.plan import PLANS
    from qa.bench.report import render_markdown, write_readme
    from qa.bench.run import run

    plan = PLANS["smoke" if args.smoke else "quick" if args.quick else "full"]
    say = None if args.quiet else (lambda msg: print(f"bench: {msg}", file=sys.stderr, flush=True))
    result = run(plan, _settings(args).seeds_dir, progress=say)
    if args.write_readme:
        write_readme(result)
        print("wrote the performance section of README.md", file=sys.stderr)
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        sys.stdout.write(render_markdown(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Learn the ranking policy's weights on the dev question sets and write them."""
    from qa.ask.ranking import weights_path
    from qa.errors import IndexUnavailable, QuestionSetError
    from qa.eval.train import train, write_weights

    out = args.out or weights_path()
    try:
        weights = train(_settings(args), args.questions, say=lambda m: print(m, file=sys.stderr))
    except QuestionSetError as exc:
        return _fail("the question sets are not valid:\n" + "\n".join(exc.problems), EXIT_USAGE)
    except IndexUnavailable as exc:
        return _fail(str(exc), EXIT_UNAVAILABLE)
    write_weights(weights, out)
    print(f"wrote {out} (threshold {weights['threshold']})")
    return 0


def cmd_faq(args: argparse.Namespace) -> int:
    """Write the question set made of the articles' own FAQ sections."""
    from qa.faq import faq_jsonl

    text = faq_jsonl(_settings(args).seeds_dir)
    if args.out:
        args.out.write_bytes(text.encode("utf-8"))
        print(f"wrote {text.count(chr(10))} questions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.buffer.write(text.encode("utf-8"))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `qa` command line."""
    p = argparse.ArgumentParser(prog="qa", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="command", required=True)
    _add_index(sub)
    _add_ask(sub)
    _add_eval(sub)
    _add_faq(sub)
    _add_train(sub)
    _add_bench(sub)
    _add_serve(sub)
    _add_feedback(sub)
    return p


def paths(sp: argparse.ArgumentParser) -> None:
    """The options every command that reads the corpus or the index takes."""
    sp.add_argument("--seeds", type=Path, help="corpus folder (env QA_SEEDS_DIR)")
    sp.add_argument("--index", type=Path, help="index folder (env QA_INDEX_DIR)")
    sp.add_argument("--chroma-url", help="Chroma server URL (env QA_CHROMA_URL)")


def _add_index(sub: Any) -> None:
    """`qa index`."""
    sp = sub.add_parser("index", help="build the index of the corpus and publish it")
    paths(sp)
    sp.add_argument("--json", action="store_true", help="print the build report as JSON")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sp.add_argument(
        "--if-missing",
        action="store_true",
        help="build only when no index is published yet (as `make run` does)",
    )
    sp.set_defaults(func=cmd_index)


def _add_ask(sub: Any) -> None:
    """`qa ask`."""
    sp = sub.add_parser("ask", help="answer a question with cited passages")
    paths(sp)
    sp.add_argument("question", nargs="?", help="the question (omit for an interactive prompt)")
    sp.add_argument("-k", "--top-k", type=int, help="number of citations (env QA_TOP_K, default 5)")
    sp.add_argument("--json", action="store_true", help="print the answer object as JSON")
    sp.set_defaults(func=cmd_ask)


def _add_eval(sub: Any) -> None:
    """`qa eval`."""
    sp = sub.add_parser("eval", help="measure answer quality on question sets and report")
    paths(sp)
    sp.add_argument(
        "--questions",
        type=Path,
        nargs="+",
        action="extend",
        metavar="FILE",
        help="question set files (JSON Lines; default: the shipped sets in tests/questions/)",
    )
    sp.add_argument("-k", "--top-k", type=int, help="citations per answer (env QA_TOP_K)")
    sp.add_argument("--json", action="store_true", help="print the report as one JSON object")
    sp.add_argument("--out", type=Path, metavar="DIR", help="also write report.json/.md/.png here")
    sp.add_argument(
        "--baseline", action="store_true", help="also score a tutorial pipeline, side by side"
    )
    sp.add_argument(
        "--calibrate", action="store_true", help="sweep the answerability threshold on support"
    )
    sp.add_argument(
        "--write-baseline",
        action="store_true",
        help="record these metrics as the accepted ones (tests/questions/baseline.json)",
    )
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    sp.set_defaults(func=cmd_eval)


def _add_train(sub: Any) -> None:
    """`qa train`."""
    sp = sub.add_parser("train", help="learn the ranking weights on the dev question sets")
    paths(sp)
    sp.add_argument(
        "--questions", type=Path, nargs="+", metavar="FILE", help="default: tests/questions/dev/"
    )
    sp.add_argument("--out", type=Path, metavar="FILE", help="default: qa/ask/weights.json")
    sp.set_defaults(func=cmd_train)


def _add_faq(sub: Any) -> None:
    """`qa faq`."""
    sp = sub.add_parser("faq", help="generate the question set of the articles' FAQ sections")
    paths(sp)
    sp.add_argument("--out", type=Path, metavar="FILE", help="output file (default: stdout)")
    sp.set_defaults(func=cmd_faq)


def _add_bench(sub: Any) -> None:
    """`qa bench`."""
    sp = sub.add_parser("bench", help="measure speed (ask, index, start-up, scale, HTTP)")
    sp.add_argument("--seeds", type=Path, help="corpus folder (env QA_SEEDS_DIR)")
    sp.add_argument("--json", action="store_true", help="print the results as one JSON object")
    sp.add_argument("--quick", action="store_true", help="smaller corpora, fewer rounds (<3 min)")
    sp.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)  # the CI test's size
    sp.add_argument("--write-readme", action="store_true", help="put the table into README.md")
    sp.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    sp.set_defaults(func=cmd_bench)


def _add_serve(sub: Any) -> None:
    """`qa serve`."""
    sp = sub.add_parser("serve", help="serve the chat page and the JSON API")
    paths(sp)
    sp.add_argument("--host", help="address to listen on (env QA_HOST, default 127.0.0.1)")
    sp.add_argument("--port", type=int, help="port to listen on (env QA_PORT, default 8000)")
    sp.add_argument(
        "--threads",
        type=int,
        help="worker threads (env QA_THREADS, default 2 per core, at least 4)",
    )
    sp.add_argument(
        "--rate-limit",
        type=int,
        help="requests a minute per client on /api, 0 disables (env QA_RATE_LIMIT, default 120)",
    )
    sp.set_defaults(func=cmd_serve)


def _add_feedback(sub: Any) -> None:
    """`qa feedback`."""
    sp = sub.add_parser("feedback", help="work with the feedback users gave in the chat page")
    fsub = sp.add_subparsers(dest="feedback_command", required=True)
    fp = fsub.add_parser("export", help="write judgements as evaluation questions (JSON Lines)")
    paths(fp)
    fp.add_argument("--out", type=Path, help="output file (default: standard output)")
    fp.set_defaults(func=cmd_feedback_export)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `qa` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:  # `qa ... | head`: the reader has gone; stop quietly, like cat
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except ValueError as exc:  # bad settings from the environment
        return _fail(str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
