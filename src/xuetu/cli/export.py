"""`xuetu export`: a stored model as a merged Hugging Face folder, GGUF, LoRA GGUF or Ollama folder."""

from __future__ import annotations

import click


@click.command()
@click.argument("name")
@click.option("--format", "fmt", required=True, type=click.Choice(["hf", "gguf", "gguf-lora", "ollama"]),
              help="hf: merged safetensors; gguf: one GGUF file; gguf-lora: the LoRA as a GGUF adapter over the "
                   "base GGUF; ollama: a folder with a Modelfile and the GGUF files, for `ollama create`.")
@click.option("--quant", type=click.Choice(["f32", "f16", "bf16", "q8_0", "q4_1", "q4_0"]), default=None,
              help="GGUF precision (default f16; for gguf-lora and ollama adapters, the base's own GGUF).")
@click.option("--out", default=None, type=click.Path(), help="Also write the files here (for ollama: the folder).")
@click.option("--name", "new_name", default=None, help="Store name of the export (default NAME:QUANT, NAME:gguf, …).")
@click.option("--verify/--no-verify", default=True, show_default=True,
              help="Compare the export with its source (template, tokens, outputs) before storing it.")
@click.option("-q", "--quiet", is_flag=True, help="No progress bars.")
def export(name, fmt, quant, out, new_name, verify, quiet):
    """Export a model: merged, GGUF (no compiler needed), LoRA GGUF, or an Ollama Modelfile folder."""
    from xuetu.export import export as run

    result = run(name, fmt, quant=quant, out=out, verify=verify, new_name=new_name, progress=not quiet)
    if result.report is not None:
        click.echo(result.report.text().rstrip())
    for path in result.files:
        click.echo(f"wrote {path}")
    if result.name:
        click.echo(f"exported {name} as {result.name}\ntry it: xuetu run {result.name}")
    if fmt == "ollama" and result.files:
        click.echo(f"for Ollama: cd {result.files[0]} && ollama create {name.split(':')[0].split('/')[-1]} -f Modelfile")


COMMANDS = [export]
