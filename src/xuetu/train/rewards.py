"""Rule rewards: score one answer to one prompt, for ranking sampled answers (`xuetu data pairs`) and for
reinforcement learning from rules.

A reward is `fn(prompt: str, answer: str, example: dict) -> float`, where `example` holds the prompt
record's own fields (a reference answer under "reference", "answer" or "output", say). Rewards are named by
spec strings, as the CLI's repeatable `--reward` takes them; a spec may start with a weight, `2*regex:...`.

| spec                          | score                                                                            |
|-------------------------------|----------------------------------------------------------------------------------|
| `regex:PATTERN`               | 1.0 if PATTERN matches anywhere in the answer (re.search, DOTALL), else 0.0      |
| `exact` / `exact:KEY`         | 1.0 if the answer's final answer equals the reference (KEY, default the first of |
|                               | reference, answer, output in the example), else 0.0; see `final_answer`          |
| `language:CODE`               | 1.0 if the answer is in that language (xuetu.data.language), else 0.0             |
| `length:MAX`                  | 1.0 up to MAX units, then MAX/units (twice too long scores 0.5); a unit is a      |
|                               | Chinese character or a word of any other script (a run of letters and digits)    |
| `guard` / `guard:POLICY.yaml` | 1.0 if the safety guard lets the answer out unchanged (pass or log), 0.0 if it   |
|                               | warns, masks or blocks                                                           |
| `refusal`                     | 1.0 if the answer politely declines (English or Chinese phrases), else 0.0       |
| `python:FILE.py:FUNCTION`     | the user's function, same signature; a bool counts as 1.0/0.0                    |
| `python:package.module:FUNC`  |                                                                                  |

    rewards = parse(["language:zh", "2*length:50", "guard"])
    total, parts = rewards.score("介绍一下长城。", "长城是……", {})   # parts: {"language:zh": 1.0, ...}

`total` is the weighted sum; `parts` holds each spec's own (unweighted) score, keyed by the spec without its
weight. A new kind is one builder registered in KINDS: it takes the text after the colon (or None) and
returns the reward function.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from xuetu.errors import BadInput, XuetuError

RewardFn = Callable[[str, str, dict], float]
REFERENCE_KEYS = ("reference", "answer", "output")
REFUSALS = ("i can't", "i cannot", "i can not", "i won't", "i will not", "i'm sorry", "i am sorry", "i apologize",
            "i'm not able to", "i am not able to", "i'm unable to", "i am unable to", "sorry, but",
            "抱歉", "对不起", "我不能", "我无法", "无法提供", "不能提供", "无法帮助", "不能帮助", "恕我", "我不会提供")
"""Polite refusals, looked for in the first REFUSAL_WINDOW characters (lower-cased, curly quotes made straight)."""
REFUSAL_WINDOW = 200
SPEC_HELP = ("Rewards are regex:PATTERN, exact[:KEY], language:CODE, length:MAX, guard[:POLICY], refusal, "
             "python:FILE.py:FUNCTION or python:module:FUNCTION, optionally weighted like 2*length:50.")
_WEIGHT = re.compile(r"\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+))\s*\*(.*)", re.S)
_ANSWER_TAG = re.compile(r"<answer>(.*?)</answer>", re.S | re.I)
_NUMBER = re.compile(r"[-+]?\d[\d,]*(?:\.\d+)?|[-+]?\.\d+")
_HAN = re.compile(r"[\u4e00-\u9fff\u3400-\u4dbf]")
_WORD = re.compile(r"[^\W_]+", re.U)


@dataclass
class Reward:
    name: str
    """The spec without its weight, e.g. "length:50": the key of this reward's score in `parts`."""
    weight: float
    fn: RewardFn


class Rewards:
    """Several rewards, scored together."""

    def __init__(self, items: list[Reward]):
        self.items = items

    @property
    def names(self) -> list[str]:
        return [r.name for r in self.items]

    def score(self, prompt: str, answer: str, example: dict) -> tuple[float, dict[str, float]]:
        """(the weighted sum, each reward's own score by name)."""
        parts: dict[str, float] = {}
        total = 0.0
        for r in self.items:
            value = checked(r.name, r.fn(prompt, answer, example))
            parts[r.name] = value
            total += r.weight * value
        return total, parts


def checked(name: str, value) -> float:
    """A reward's value as a float, or a clear error for anything that is not a finite number."""
    if isinstance(value, bool):
        return float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise XuetuError(f"reward {name} returned {value!r} ({type(value).__name__}), not a number",
                         "A reward function returns a float (or an int or bool), e.g. 1.0 for a good answer.")
    return float(value)


# --- the kinds ------------------------------------------------------------------------------------------


def regex_reward(pattern: str | None) -> RewardFn:
    if not pattern:
        raise BadInput("regex needs a pattern: regex:PATTERN", SPEC_HELP)
    try:
        compiled = re.compile(pattern, re.S)
    except re.error as e:
        raise BadInput(f"regex:{pattern} is not a valid regular expression ({e})",
                       "Check the pattern; quote it in the shell, e.g. --reward 'regex:^\\d+$'.") from None
    return lambda prompt, answer, example: 1.0 if compiled.search(answer) else 0.0


def normalise(text: str) -> str:
    """NFKC, lower case, single spaces, no surrounding quotes or trailing full stop; 1,000 -> 1000 and 2.50 -> 2.5."""
    text = " ".join(unicodedata.normalize("NFKC", text).lower().split()).strip(" \"'`*")
    text = text.rstrip(".。!！")
    if _NUMBER.fullmatch(text):
        text = text.replace(",", "")
        if "." in text:
            text = text.rstrip("0").rstrip(".") or "0"
        text = text.lstrip("+")
    return text


def final_answer(text: str, numeric: bool) -> str:
    """The part of an answer that is compared with a reference: the text inside <answer>…</answer> when there
    is one; else what follows the last "####" (GSM8K's marker); else, when the reference is a number, the
    last number in the text; else the whole text. Normalised by `normalise`."""
    tagged = _ANSWER_TAG.findall(text)
    if tagged:
        text = tagged[-1]
    elif "####" in text:
        text = text.rsplit("####", 1)[1]
    if numeric:
        numbers = _NUMBER.findall(unicodedata.normalize("NFKC", text))
        if numbers:
            text = numbers[-1]
    return normalise(text)


def exact_reward(key: str | None) -> RewardFn:
    keys = (key,) if key else REFERENCE_KEYS

    def exact(prompt: str, answer: str, example: dict) -> float:
        ref = next((example[k] for k in keys if isinstance(example.get(k), (str, int, float))), None)
        if ref is None:
            raise XuetuError(f"exact needs a reference answer, and this prompt has no {' / '.join(keys)} field "
                             f"(prompt: {prompt[:60]!r})",
                             "Give each prompt its reference, e.g. {\"prompt\": \"2+2?\", \"reference\": \"4\"}, "
                             "or name the field with exact:FIELD.")
        want = final_answer(str(ref), numeric=True)
        numeric = bool(_NUMBER.fullmatch(want))  # a number: compare the answer's last number with it
        return 1.0 if final_answer(answer, numeric) == want else 0.0

    return exact


def language_reward(code: str | None) -> RewardFn:
    from xuetu.data.language import detect_language

    if not code or not re.fullmatch(r"[a-z]{2,3}", code):
        raise BadInput(f"language needs a language code, e.g. language:zh or language:en (got {code!r})", SPEC_HELP)
    return lambda prompt, answer, example: 1.0 if detect_language(answer) == code else 0.0


def length_units(text: str) -> int:
    """Chinese characters plus words of other scripts: one unit is about one word in either language."""
    han = len(_HAN.findall(text))
    return han + len(_WORD.findall(_HAN.sub(" ", text)))


def length_reward(limit: str | None) -> RewardFn:
    try:
        most = int(limit or "")
    except ValueError:
        most = 0
    if most < 1:
        raise BadInput(f"length needs a positive whole number of units, e.g. length:50 (got {limit!r})", SPEC_HELP)

    def length(prompt: str, answer: str, example: dict) -> float:
        units = length_units(answer)
        return 1.0 if units <= most else most / units

    return length


def guard_reward(policy: str | None) -> RewardFn:
    from xuetu.safety.guard import Guard

    guard = Guard.from_policy(policy) if policy else Guard()

    def guarded(prompt: str, answer: str, example: dict) -> float:
        action = guard.check(answer, "output", direction="output").action
        return 1.0 if action in ("pass", "log") else 0.0

    return guarded


def refusal_reward(arg: str | None) -> RewardFn:
    if arg:
        raise BadInput(f"refusal takes no argument (got refusal:{arg})", SPEC_HELP)

    def refuses(prompt: str, answer: str, example: dict) -> float:
        head = answer[:REFUSAL_WINDOW].lower().replace("\u2019", "'").replace("\u2018", "'")
        return 1.0 if any(p in head for p in REFUSALS) else 0.0

    return refuses


def _load_module(target: str, spec: str):
    if target.endswith(".py") or "/" in target or "\\" in target:
        path = Path(target).expanduser()
        if not path.is_file():
            raise BadInput(f"{spec}: {path} does not exist", "Give the path of a Python file: python:FILE.py:FUNCTION.")
        loader = importlib.util.spec_from_file_location(f"xuetu_reward_{path.stem}", path)
        module = importlib.util.module_from_spec(loader)
        try:
            loader.loader.exec_module(module)
        except Exception as e:  # noqa: BLE001 — the user's file: say which and why
            raise XuetuError(f"{spec}: importing {path} failed: {type(e).__name__}: {e}",
                             "Fix the file so that `python FILE.py` runs.") from e
        return module
    try:
        return importlib.import_module(target)
    except ImportError as e:
        raise BadInput(f"{spec}: cannot import module {target} ({e})",
                       "Give a module on the Python path (package.module) or a file: python:FILE.py:FUNCTION.") from e
    except Exception as e:  # noqa: BLE001
        raise XuetuError(f"{spec}: importing {target} failed: {type(e).__name__}: {e}") from e


def python_reward(arg: str | None) -> RewardFn:
    spec = f"python:{arg}"
    if not arg or ":" not in arg:
        raise BadInput(f"{spec} names no function", "Write python:FILE.py:FUNCTION or python:package.module:FUNCTION.")
    target, name = arg.rsplit(":", 1)
    fn = getattr(_load_module(target, spec), name, None)
    if not callable(fn):
        raise BadInput(f"{spec}: {target} has no function {name!r}",
                       "The function takes (prompt: str, answer: str, example: dict) and returns a float.")

    def call(prompt: str, answer: str, example: dict) -> float:
        try:
            value = fn(prompt, answer, example)
        except XuetuError:
            raise
        except Exception as e:  # noqa: BLE001 — the user's code: name it in the message, keep the traceback
            raise XuetuError(f"reward {spec} failed: {type(e).__name__}: {e}",
                             "Fix the function; it is called as fn(prompt, answer, example).") from e
        return checked(spec, value)

    return call


KINDS: dict[str, Callable[[str | None], RewardFn]] = {
    "regex": regex_reward, "exact": exact_reward, "language": language_reward, "length": length_reward,
    "guard": guard_reward, "refusal": refusal_reward, "python": python_reward}


def parse_one(spec: str) -> Reward:
    """One spec, e.g. "2*length:50", as a Reward."""
    weight, body = 1.0, spec.strip()
    m = _WEIGHT.fullmatch(spec)
    if m:
        weight, body = float(m.group(1)), m.group(2).strip()
    kind, _, arg = body.partition(":")
    if kind not in KINDS:
        raise BadInput(f"unknown reward {spec!r}", SPEC_HELP)
    return Reward(name=body, weight=weight, fn=KINDS[kind](arg or None))


def parse(specs: list[str]) -> Rewards:
    """The rewards the specs name, in order; a spec given twice is an error (its scores would share a name)."""
    items = [parse_one(s) for s in specs]
    names = [r.name for r in items]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise BadInput(f"reward {twice[0]} is given twice", "Give each reward once; weight it instead, e.g. 2*guard.")
    return Rewards(items)
