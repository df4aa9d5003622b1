"""Data verbs: `xuetu data convert | clean | stats | split | pairs`."""

from __future__ import annotations

from pathlib import Path

import click

from xuetu.errors import XuetuError

OUTPUT_FORMATS = ["messages", "alpaca", "sharegpt", "qa", "text", "pairs", "kto"]
"""data.formats.FORMATS, listed here so `--help` needs no import of the data package."""


@click.group()
def data():
    """Prepare training data: convert formats, clean, inspect, split, and make preference pairs."""


@data.command()
@click.argument("inp", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--to", "fmt", required=True, type=click.Choice(OUTPUT_FORMATS),
              help="Output format; pairs -> kto writes each pair as two labelled examples.")
@click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True)
def convert(inp, out, fmt, on_error):
    """Convert IN (any supported file or folder) to OUT (JSONL) in another format."""
    from xuetu.data import formats
    from xuetu.data.readers import read
    from xuetu.data.writer import JsonlWriter

    done = skipped = 0
    with JsonlWriter(out) as w:
        for item in read(inp):
            record = None
            try:
                if item.error:
                    raise formats.FormatError(item.error)
                record = formats.to_record(item.obj)
                for obj in formats.outputs(record, fmt):
                    w.write(obj)
                done += 1
            except formats.FormatError as e:
                if on_error == "fail":
                    raise XuetuError(f"{item.source}: {e}", _convert_hint(record, fmt)) from None
                skipped += 1
                click.echo(f"skipped {item.source}: {e}", err=True)
        if done == 0:
            raise XuetuError(f"nothing to write: {inp} gave no convertible records")
    split = f" from {done} records" if w.count != done else ""
    click.echo(f"wrote {w.count} records{split} to {out}" + (f" ({skipped} skipped)" if skipped else ""))


def _convert_hint(record, fmt: str) -> str:
    skip = "Pass --on-error skip to leave such records out."
    if record is not None and (record.is_preference != (fmt in ("pairs", "kto")) or
                               (record.label is not None and fmt == "pairs")):
        return ("Preference data converts to pairs or kto (a pair becomes two KTO examples; a KTO example cannot "
                "become a pair), other data to the other formats. " + skip)
    return skip


@data.command()
@click.argument("inp", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--to", "fmt", default=None, type=click.Choice(OUTPUT_FORMATS),
              help="Output format (default: the input's).")
@click.option("--pii", is_flag=True, help="Mask e-mails, phone numbers, ID/bank card numbers and IP addresses.")
@click.option("--no-exact-dedup", is_flag=True)
@click.option("--no-near-dedup", is_flag=True)
@click.option("--threshold", type=float, default=None,
              help="Near-duplicate similarity in (0, 1]: estimated Jaccard of the records' character 5-grams; "
                   "higher merges fewer. [default: 0.8]")
@click.option("--cjk-threshold", type=float, default=None,
              help="The same for Chinese, Japanese and Korean records (character 3-grams). [default: 0.7]")
@click.option("--min-tokens", type=int, default=None)
@click.option("--max-tokens", type=int, default=None)
@click.option("--model", default=None, help="Tokenizer for the token bounds (default smollm2:135m).")
@click.option("--max-repeated-lines", default=0.3, show_default=True)
@click.option("--max-repeated-chars", default=0.3, show_default=True)
@click.option("--max-symbols", default=0.25, show_default=True)
@click.option("--lang", "languages", default=None, help="Keep only these languages, e.g. zh,en.")
@click.option("--normalize", default="NFKC", show_default=True, type=click.Choice(["NFKC", "NFC", "none"]))
@click.option("--on-error", type=click.Choice(["fail", "skip"]), default="fail", show_default=True)
@click.option("-q", "--quiet", is_flag=True)
def clean(inp, out, fmt, pii, no_exact_dedup, no_near_dedup, threshold, cjk_threshold, min_tokens, max_tokens, model,
          max_repeated_lines, max_repeated_chars, max_symbols, languages, normalize, on_error, quiet):
    """Clean IN into OUT: normalise, mask PII, filter, deduplicate. Rejects go to OUT.rejects.jsonl."""
    from xuetu.data.clean import CleanArgs, clean as run_clean

    near = {k: v for k, v in (("threshold", threshold), ("cjk_threshold", cjk_threshold)) if v is not None}
    args = CleanArgs(normalize=normalize, pii=pii, exact_dedup=not no_exact_dedup, near_dedup=not no_near_dedup,
                     **near, min_tokens=min_tokens, max_tokens=max_tokens, tokenizer=model,
                     max_repeated_lines=max_repeated_lines, max_repeated_chars=max_repeated_chars,
                     max_symbols=max_symbols, to=fmt, on_error=on_error,
                     languages=[x.strip() for x in languages.split(",")] if languages else None)
    s = run_clean(inp, out, args, progress=not quiet)
    rate = f"{s.input / s.seconds:,.0f} records/s" if s.seconds else ""
    click.echo(f"\n{'read':<20}{s.input:>8}\n{'kept':<20}{s.kept:>8}\n{'rejected':<20}{s.rejected_total:>8}")
    for reason, n in s.rejected.most_common():
        click.echo(f"  {reason:<18}{n:>8}")
    if s.pii:
        click.echo("masked: " + ", ".join(f"{k} {v}" for k, v in s.pii.most_common()))
    click.echo(f"\nclean:   {s.output}\nrejects: {s.rejects}\n{rate}")


@data.command()
@click.argument("inp", type=click.Path(path_type=Path))
@click.option("--model", default=None, help="Tokenizer to count with (default smollm2:135m).")
@click.option("--context", type=int, default=None, help="Context length to compare against (default: the model's).")
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None,
              help="Folder for the plot and stats.json (default: ./<name>-stats).")
@click.option("--json", "as_json", is_flag=True)
def stats(inp, model, context, out_dir, as_json):
    """Count records, turns, tokens, languages and duplicates; plot token lengths."""
    import json

    from xuetu import models
    from xuetu.data.clean import load_tokenizer
    from xuetu.data.stats import compute_stats, text_histogram, write_report
    from xuetu.models.aliases import DEFAULT_MODEL
    from xuetu.models.facts import describe

    tokenizer = load_tokenizer(model)
    if context is None:
        context = describe(models.resolve(model or DEFAULT_MODEL)).context_length or 2048
    result = compute_stats(inp, tokenizer, context, progress=not as_json)
    out_dir = out_dir or Path(f"{Path(inp).stem}-stats")
    png, path = write_report(result, out_dir, f"{Path(inp).name}: tokens per record")
    if as_json:
        click.echo(json.dumps({k: v for k, v in result.items() if k != "lengths"}, indent=2, ensure_ascii=False))
        return
    t = result["tokens"]
    click.echo(f"records      {result['records']}  (malformed {result['malformed']}; formats "
               + ", ".join(f"{k} {v}" for k, v in result["formats"].items()) + ")")
    click.echo(f"turns        {result['turns']['total']} (mean {result['turns']['mean']} per record)")
    if "preferences" in result:
        _echo_preferences(result["preferences"])
    click.echo(f"tokens       total {t['total']:,}  mean {t['mean']}  median {t['median']}  p95 {t['p95']}  max {t['max']}")
    click.echo("languages    " + ", ".join(f"{k} {v:.0%}" for k, v in result["languages"].items())
               + f"  (of {result['languages_sampled']} sampled)")
    d = result["duplicates"]
    click.echo(f"duplicates   exact {d['exact']}, near {d['near']} (similarity >= {d['threshold']}, CJK records {d['cjk_threshold']})")
    click.echo(f"too long     {result['longer_than_context']:.1%} of records exceed {context} tokens")
    click.echo("\n" + text_histogram(result["lengths"]))
    click.echo(f"\nplot:  {png}\nstats: {path}")


def _echo_preferences(p: dict) -> None:
    if p["pairs"]:
        click.echo(f"preference pairs: {p['pairs']}  (chosen answer longer than the rejected in "
                   f"{p['chosen_longer']:.0%})")
    if p["kto"]["desirable"] or p["kto"]["undesirable"]:
        click.echo(f"KTO examples: desirable {p['kto']['desirable']}, undesirable {p['kto']['undesirable']}")
    for kind, t in p["answer_tokens"].items():
        click.echo(f"  {kind + ' answers':<20} mean {t['mean']}  median {t['median']}  max {t['max']} tokens")


@data.command()
@click.argument("inp", type=click.Path(path_type=Path))
@click.option("--val", default=0.1, show_default=True)
@click.option("--test", default=0.1, show_default=True)
@click.option("--seed", default=42, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=None, help="Default: ./<name>-split")
def split(inp, val, test, seed, out_dir):
    """Split IN into train/val/test JSONL; near duplicates never straddle two splits, nor do preference records
    that share a prompt."""
    from xuetu.data.split import split as run_split

    out_dir = out_dir or Path(f"{Path(inp).stem}-split")
    counts = run_split(inp, out_dir, val=val, test=test, seed=seed)
    click.echo(f"train {counts['train']}, val {counts['val']}, test {counts['test']} "
               f"({counts['groups']} groups of near duplicates kept together) in {out_dir}/")


@data.command()
@click.option("--prompts", required=True, type=click.Path(path_type=Path),
              help="JSONL of prompts ({\"prompt\": ...}, messages, Alpaca, QA); other fields reach the rewards.")
@click.option("--model", default=None, help="The model that answers: a model in the store (with --url: the endpoint's model).")
@click.option("--url", default=None, help="An OpenAI-compatible endpoint that answers instead, e.g. http://host:port/v1.")
@click.option("--key", default=None, help="API key of --url (default $OPENAI_API_KEY).")
@click.option("--n", default=4, show_default=True, help="Answers sampled per prompt.")
@click.option("--temperature", default=0.9, show_default=True)
@click.option("--max-tokens", default=128, show_default=True)
@click.option("--reward", "rewards", multiple=True, metavar="SPEC",
              help="Rank by a reward; repeatable: regex:PATTERN, exact[:KEY], language:zh, length:MAX, guard[:POLICY], "
                   "refusal, python:FILE.py:FUNCTION; weight one like 2*guard.")
@click.option("--judge", default=None, help="A judge model that scores each answer 1-10 (with --judge-url: its name there).")
@click.option("--judge-url", default=None, help="An OpenAI-compatible endpoint as the judge.")
@click.option("--judge-key", default=None, help="API key of --judge-url (default $OPENAI_API_KEY).")
@click.option("--seed", default=0, show_default=True, help="Answer j of each prompt is drawn with seed + j.")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="The pairs (JSONL: prompt, chosen, rejected, reason).")
@click.option("-q", "--quiet", is_flag=True)
def pairs(prompts, model, url, key, n, temperature, max_tokens, rewards, judge, judge_url, judge_key, seed, out, quiet):
    """Preference pairs from a model's own answers: sample --n per prompt, keep the best and the worst."""
    from xuetu.train.pairs import PairsArgs, make_pairs

    args = PairsArgs(prompts=str(prompts), out=str(out), model=model, url=url, key=key, n=n, temperature=temperature,
                     max_tokens=max_tokens, rewards=list(rewards), judge=judge, judge_url=judge_url,
                     judge_key=judge_key, seed=seed)
    s = make_pairs(args, progress=not quiet)
    click.echo(f"\n{'prompts':<20}{s.prompts:>8}\n{'pairs written':<20}{s.pairs:>8}\n{'ties skipped':<20}{s.ties:>8}")
    if s.unjudged:
        click.echo(f"{'not judged':<20}{s.unjudged:>8}")
    click.echo(f"{'duplicate answers':<20}{s.duplicates:>8}\n"
               f"mean score: chosen {s.mean_chosen:.3f}, rejected {s.mean_rejected:.3f}\n\npairs: {s.out}")


COMMANDS = [data]
