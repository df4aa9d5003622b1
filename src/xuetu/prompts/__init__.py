"""The prompt library: versioned YAML templates with variables, shipped ones plus the user's own.

    xuetu prompt list
    xuetu prompt show co-star
    xuetu prompt render co-star --var task="总结这篇文章" --var audience=初学者

A template is one YAML file: name, version, language, description, variables (name -> description,
with an optional default), an optional system text, and the user text, both Jinja2. Shipped files live
in `library/`; files in XUETU_HOME/prompts/ are the user's, and a user file with the same name and a
higher version wins. A variable the template needs and nobody gave is an error that names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from xuetu.errors import XuetuError

LIBRARY = Path(__file__).with_name("library")


@dataclass
class Template:
    name: str
    version: int
    language: str
    description: str
    user: str
    system: str | None = None
    variables: dict[str, dict] = field(default_factory=dict)
    path: Path | None = None

    def render(self, values: dict | None = None) -> list[dict]:
        """Chat messages with the variables filled in."""
        import jinja2

        values = dict(values or {})
        unknown = sorted(set(values) - set(self.variables))
        if unknown:
            raise XuetuError(f"{self.name} has no variable {', '.join(unknown)}",
                             f"Its variables: {', '.join(self.variables) or 'none'}.")
        full = {k: (values[k] if k in values else spec.get("default")) for k, spec in self.variables.items()}
        missing = [k for k, v in full.items() if v is None]
        if missing:
            raise XuetuError(f"{self.name} needs {', '.join(missing)}",
                             "Give each with --var NAME=VALUE: " + "; ".join(
                                 f"{k}: {self.variables[k].get('description', '')}" for k in missing))
        env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False)
        messages = []
        if self.system:
            messages.append({"role": "system", "content": env.from_string(self.system).render(full).strip()})
        messages.append({"role": "user", "content": env.from_string(self.user).render(full).strip()})
        return messages


def user_dir() -> Path:
    from xuetu.home import xuetu_home

    return xuetu_home() / "prompts"


def _load(path: Path) -> Template:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as e:
        raise XuetuError(f"cannot read the prompt template {path}: {e}", "Fix the YAML, or remove the file.") from None
    if not isinstance(data, dict) or not isinstance(data.get("user"), str) or not data.get("name"):
        raise XuetuError(f"{path} is not a prompt template", "It needs at least `name:` and `user:` (the prompt text).")
    variables = data.get("variables") or {}
    if not isinstance(variables, dict):
        raise XuetuError(f"{path}: variables must be a mapping of name -> description or {{description, default}}")
    variables = {k: (v if isinstance(v, dict) else {"description": str(v)}) for k, v in variables.items()}
    try:
        version = int(data.get("version", 1))
    except (TypeError, ValueError):
        raise XuetuError(f"{path}: version must be an integer, got {data.get('version')!r}") from None
    return Template(name=str(data["name"]), version=version, language=str(data.get("language", "en")),
                    description=str(data.get("description", "")), user=data["user"], system=data.get("system"),
                    variables=variables, path=path)


def templates() -> dict[str, Template]:
    """Every template by name: the highest version wins, the user's over the shipped one at equal versions."""
    found: dict[str, Template] = {}
    folders = [LIBRARY] + ([user_dir()] if user_dir().is_dir() else [])
    for folder in folders:
        for path in sorted(folder.glob("*.y*ml")):
            t = _load(path)
            if t.name not in found or t.version >= found[t.name].version:
                found[t.name] = t
    return found


def get(name: str) -> Template:
    all_ = templates()
    if name in all_:
        return all_[name]
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return _load(path)
    from xuetu.models.names import closest

    near = closest(name, sorted(all_))
    raise XuetuError(f"no prompt template {name!r}", (f"Did you mean {' or '.join(near)}? " if near else "")
                     + "See `xuetu prompt list`.")
