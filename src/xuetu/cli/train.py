"""Training verbs: `xuetu finetune`, `xuetu distill`, `xuetu pretrain`, `xuetu runs list|show`."""

from __future__ import annotations

import click


class MethodChoice(click.Choice):
    """The methods in the registry (xuetu.train.methods), read when a command line is parsed, so a method
    added with methods.register() is a valid --method."""

    def __init__(self):
        super().__init__(())

    @property
    def choices(self) -> tuple[str, ...]:
        from xuetu.train import methods

        return tuple(methods.names())

    @choices.setter
    def choices(self, value) -> None:
        pass  # click.Choice sets them once; ours follow the registry


@click.command()
@click.option("--model", default=None, help="Base model (default smollm2:135m).")
@click.option("--data", default=None, help="Training data: any file or folder `xuetu data` reads.")
@click.option("--method", default=None, type=MethodChoice())
@click.option("--out", default=None, help="Name of the new model (default <model>-<method>).")
@click.option("--config", default=None, type=click.Path(), help="A YAML recipe (see recipes/).")
@click.option("--set", "overrides", multiple=True, help="Override a setting: key=value, e.g. lora.r=8 (repeatable).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from the last checkpoint when the run exists.")
def finetune(model, data, method, out, config, overrides, resume):
    """Fine-tune a model on your data; the result is a new model in the store."""
    from xuetu.train import args as targs
    from xuetu.train.finetune import finetune as run

    args = targs.load(targs.TrainArgs, config, list(overrides), model=model, data=data, method=method, out=out)
    result = run(args, resume=resume)
    click.echo(f"\ntrained {result.model} in {result.steps} steps"
               + (" (stopped early)" if result.stopped_early else "")
               + f"\nrun: {result.run}\ntry it: xuetu run {result.model}")


@click.command()
@click.option("--teacher", default=None, help="Teacher: a model in the store (with --teacher-url: the endpoint's model).")
@click.option("--teacher-url", default=None, help="An OpenAI-compatible endpoint as the teacher, e.g. http://host:port/v1.")
@click.option("--teacher-key", default=None, help="API key of --teacher-url (default $OPENAI_API_KEY).")
@click.option("--student", default=None, help="The model to train: a store name or alias.")
@click.option("--data", default=None, help="Prompts (JSONL); in logits mode, training data with answers.")
@click.option("--mode", default=None, type=click.Choice(["sequence", "logits", "both"]),
              help="sequence: learn the teacher's answers; logits: match its distributions; both. [default: sequence]")
@click.option("--cot", is_flag=True, default=None, help="Ask the teacher to reason step by step; keep the reasoning.")
@click.option("--method", default=None, type=MethodChoice(),
              help="How the student is trained. [default: lora]")
@click.option("--out", default=None, help="Name of the new model (default <student>-distill).")
@click.option("--config", default=None, type=click.Path(), help="A YAML recipe mirroring DistillArgs.")
@click.option("--set", "overrides", multiple=True,
              help="Override a setting: key=value, e.g. kd.alpha=0.5, kd.top_k=32, train.lr=1e-3 (repeatable).")
@click.option("--resume/--no-resume", default=True, show_default=True,
              help="Continue from the last checkpoint when the run exists (the teacher's answers are always reused).")
def distill(teacher, teacher_url, teacher_key, student, data, mode, cot, method, out, config, overrides, resume):
    """Distil a teacher into a student; the result is a new model in the store."""
    from xuetu.train import args as targs
    from xuetu.train.distill import distill as run

    args = targs.load(targs.DistillArgs, config, list(overrides), teacher=teacher, teacher_url=teacher_url,
                      teacher_key=teacher_key, student=student, data=data, mode=mode, cot=cot, method=method, out=out)
    result = run(args, resume=resume)
    click.echo(f"\ndistilled {result.model} in {result.steps} steps"
               + (" (stopped early)" if result.stopped_early else "")
               + f"\nrun: {result.run}\ntry it: xuetu run {result.model}")


@click.command()
@click.option("--config", default=None, type=click.Path(), help="A YAML recipe (see recipes/pretrain-tiny.yaml).")
@click.option("--data", default=None, help="Raw text: a folder of .txt/.md files or any file `xuetu data` reads.")
@click.option("--out", default=None, help="Name of the new model.")
@click.option("--set", "overrides", multiple=True, help="Override a setting: key=value (repeatable).")
@click.option("--resume/--no-resume", default=True, show_default=True)
def pretrain(config, data, out, overrides, resume):
    """Train a small Llama- or Qwen-style model from scratch on raw text."""
    from xuetu.train import args as targs
    from xuetu.train.pretrain import pretrain as run

    args = targs.load(targs.PretrainArgs, config, list(overrides), data=data, out=out)
    result = run(args, resume=resume)
    click.echo(f"\ntrained {result.model} in {result.steps} steps: validation loss {result.first_val:.2f} -> "
               f"{result.val_loss:.2f}\nrun: {result.run}")


@click.group()
def runs():
    """Training runs: list them, show one (writes its loss curves)."""


@runs.command(name="list")
def runs_list():
    """List the training runs."""
    from xuetu.train.runs import list_runs

    rows = list_runs()
    click.echo(f"{'RUN':<28} {'KIND':<9} {'STATUS':<9} {'STEPS':>11}  {'LOSS':>7}  {'VAL':>7}  MODEL")
    for r in rows:
        steps = f"{r.get('steps', '?')}/{r.get('total_steps', '?')}"
        fmt = lambda v: f"{v:.3f}" if isinstance(v, (int, float)) else "-"  # noqa: E731
        click.echo(f"{r['run']:<28} {r.get('kind', ''):<9} {r.get('status', ''):<9} {steps:>11}  "
                   f"{fmt(r.get('train_loss')):>7}  {fmt(r.get('val_loss')):>7}  {r.get('out', '')}")


@runs.command(name="show")
@click.argument("run")
def runs_show(run):
    """Show a run: settings, progress, last metrics; writes curves.png."""
    import json

    from xuetu.train.runs import get_run

    r = get_run(run)
    info, metrics = r.info, r.metrics()
    for key in ("kind", "status", "out", "base", "method", "total_steps", "steps", "trainable_parameters",
                "train_loss", "val_loss", "started_at", "finished_at", "error"):
        if info.get(key) is not None:
            click.echo(f"{key:<22}{info[key]}")
    if metrics:
        click.echo(f"{'last step':<22}{json.dumps(metrics[-1])}")
    click.echo(f"{'curves':<22}{r.plot()}")
    if (r.path / "report.md").is_file():
        click.echo("\n" + (r.path / "report.md").read_text(encoding="utf-8"))


COMMANDS = [finetune, distill, pretrain, runs]
