"""Typed training configs. YAML recipes mirror these classes; `--set key=value` (dotted for nested
fields, e.g. lora.r=8) overrides them; everything is validated when loaded."""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from xuetu.errors import XuetuError
from xuetu.train import methods


@dataclass
class LoraArgs:
    r: int = 16
    """Rank of the low-rank update matrices."""
    alpha: int = 32
    """Scale of the update (alpha / r multiplies it)."""
    dropout: float = 0.05
    target_modules: str | list[str] = "all-linear"
    """Which linear layers get adapters: "all-linear" or a list such as [q_proj, v_proj]."""

    def __post_init__(self):
        if isinstance(self.target_modules, str) and "," in self.target_modules:
            self.target_modules = [m.strip() for m in self.target_modules.split(",") if m.strip()]
        if self.r < 1 or self.alpha <= 0 or not 0 <= self.dropout < 1:
            raise XuetuError("lora.r must be >= 1, lora.alpha > 0 and lora.dropout in [0, 1)")


@dataclass
class PromptArgs:
    num_virtual_tokens: int = 20
    """Learned soft-prompt (or prefix) length, in tokens."""
    init_text: str | None = None
    """Prompt tuning only: initialise the soft prompt from this text instead of at random."""


@dataclass
class AlignArgs:
    """Preference training (dpo, orpo, simpo, kto): see docs/train.md."""

    weights: str = "lora"
    """What trains: lora, qlora (GPU) or full."""
    beta: float | None = None
    """How far the model may move from the reference (DPO, KTO: 0.1), SimPO's reward scale (2.0), ORPO's weight
    of the odds-ratio term (0.1); None: the objective's default."""
    gamma: float = 0.5
    """SimPO: the margin by which the chosen answer's reward must win."""
    sft_weight: float = 0.0
    """DPO and SimPO: add this much of the chosen answer's language-model loss (keeps answers fluent)."""
    desirable_weight: float = 1.0
    """KTO: weight of desirable examples (raise it when they are fewer than undesirable ones)."""
    undesirable_weight: float = 1.0
    rewards: str | list[str] = field(default_factory=list)
    """GRPO: the rewards that score each sampled answer, e.g. ["regex:<answer>.*</answer>", "exact", "2*language:zh",
    "python:my_rewards.py:score"] (see xuetu.train.rewards); on the command line a YAML list, or specs joined
    by ";" (a comma would split a regex)."""
    group: int = 4
    """GRPO: answers sampled per prompt; each is judged against its group."""
    max_new_tokens: int = 64
    """GRPO: the longest sampled answer, in tokens."""
    temperature: float = 0.9
    """GRPO: sampling temperature (the group must differ to learn anything)."""

    def __post_init__(self):
        from xuetu.train.methods.preference import WEIGHTS

        given = [self.rewards] if isinstance(self.rewards, str) else self.rewards
        self.rewards = [part.strip() for r in given for part in str(r).split(";") if part.strip()]
        if self.group < 2 or self.max_new_tokens < 1 or not 0 < self.temperature <= 2:
            raise XuetuError("align.group must be at least 2, align.max_new_tokens at least 1, "
                             "align.temperature in (0, 2]")

        if self.weights not in WEIGHTS:
            raise XuetuError(f"align.weights must be one of {', '.join(WEIGHTS)}, got {self.weights!r}")
        if self.beta is not None and self.beta <= 0:
            raise XuetuError("align.beta must be positive")
        if self.desirable_weight <= 0 or self.undesirable_weight <= 0 or self.sft_weight < 0:
            raise XuetuError("align.desirable_weight and undesirable_weight must be positive, sft_weight >= 0")


@dataclass
class TrainArgs:
    model: str = "smollm2:135m"
    """Base model: a store name or alias."""
    data: str = ""
    """Training data: any file or folder `xuetu data` reads."""
    method: str = "lora"
    """A registered method (xuetu.train.methods): lora, qlora, full, prompt-tuning or prefix-tuning built in."""
    out: str | None = None
    """Name of the new model in the store (default: <model>-<method>)."""
    val_data: str | None = None
    """Validation data; by default `val_fraction` of the training data is held out."""
    val_fraction: float = 0.1
    max_length: int = 1024
    """Longest sequence in tokens; longer examples are truncated or dropped (see `truncation`)."""
    truncation: str = "truncate"
    """truncate or drop."""
    pack: bool = True
    """Pack several examples into each sequence (attention never crosses between them)."""
    epochs: float = 3.0
    max_steps: int | None = None
    """Stop after this many optimizer steps (overrides epochs)."""
    max_minutes: float | None = None
    """A time budget: stop (with a checkpoint, and the model saved) once training has run this long."""
    batch_size: int = 4
    """Sequences per micro-batch (per device)."""
    grad_accum: int = 1
    min_steps: int = 40
    """Small datasets get more epochs until training takes at least this many optimizer steps (0: off)."""
    lr: float | None = None
    """Peak learning rate; by default the method's LR: 5e-4 for LoRA/QLoRA, 2e-5 for full, 3e-2 prompt and 1e-2
    prefix tuning."""
    weight_decay: float = 0.0
    warmup: float = 0.05
    """Warm-up as a fraction of all steps (or a step count when >= 1)."""
    schedule: str = "cosine"
    """cosine, linear or constant (after warm-up)."""
    max_grad_norm: float = 1.0
    seed: int = 42
    precision: str = "auto"
    """auto (bf16 on a GPU that has it, else fp16 on GPU, fp32 on CPU), fp32, bf16 (also on a CPU with bf16
    units, AVX512-BF16 or AMX, where LoRA trained faster than in fp32: benchmarks/RESULTS.md) or fp16 (GPU)."""
    gradient_checkpointing: bool = False
    eval_every: int = 0
    """Validate every N optimizer steps; 0 means once per epoch."""
    save_every: int = 50
    """Checkpoint every N optimizer steps (and always at the end)."""
    early_stopping: int = 0
    """Stop after this many validations without improvement; 0 turns it off."""
    system_prompt: str | None = None
    """Added to records that have no system prompt."""
    evaluate: bool = True
    """Compare base and tuned model on the validation split after training."""
    eval_examples: int = 32
    lora: LoraArgs = field(default_factory=LoraArgs)
    prompt: PromptArgs = field(default_factory=PromptArgs)
    align: AlignArgs = field(default_factory=AlignArgs)

    def __post_init__(self):
        choices = {"method": methods.names(), "truncation": ["truncate", "drop"],
                   "schedule": ["cosine", "linear", "constant"], "precision": ["auto", "fp32", "bf16", "fp16"]}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise XuetuError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        positive = ["max_length", "batch_size", "grad_accum"]
        for name in positive:
            if getattr(self, name) < 1:
                raise XuetuError(f"{name} must be at least 1")
        method = methods.get(self.method)
        if getattr(method, "ALIGN", False):
            self.align.beta = self.align.beta or method.BETA
            if getattr(method, "REWARDED", False) and not self.align.rewards:
                raise XuetuError(f"{self.method} needs rewards to score the sampled answers",
                                 "Add --set 'align.rewards=regex:<answer>\\d+</answer>;exact' (see docs/train.md).")
        if self.lr is None:
            self.lr = method.default_lr(self) if getattr(method, "ALIGN", False) else method.LR
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise XuetuError("max_minutes must be positive")
        if self.lr <= 0 or self.epochs <= 0:
            raise XuetuError("lr and epochs must be positive")
        if not 0 <= self.val_fraction < 1:
            raise XuetuError("val_fraction must be in [0, 1)")


@dataclass
class KDArgs:
    """The logit-level distillation loss: alpha * CE + (1 - alpha) * temperature^2 * KL(teacher || student)."""

    temperature: float = 2.0
    """Softens both distributions before the KL; the KL term is scaled by its square."""
    alpha: float = 0.5
    """Weight of cross-entropy on the data's answer tokens; 1 - alpha goes to the KL (1: plain fine-tuning)."""
    top_k: int | None = None
    """None: the teacher runs on every batch (full-vocabulary KL). K: its K most likely tokens per answer
    position are computed once before training, cached in the run folder, and the teacher is freed; the KL
    is then over those K tokens, renormalised (see docs/train.md)."""

    def __post_init__(self):
        if self.temperature <= 0:
            raise XuetuError(f"kd.temperature must be positive, got {self.temperature}")
        if not 0 <= self.alpha <= 1:
            raise XuetuError(f"kd.alpha must be in [0, 1], got {self.alpha}")
        if self.top_k is not None and self.top_k < 1:
            raise XuetuError(f"kd.top_k must be at least 1, got {self.top_k}")


@dataclass
class DistillArgs:
    teacher: str | None = None
    """The teacher: a model in the store; with teacher_url, the model name to ask the endpoint for."""
    teacher_url: str | None = None
    """An OpenAI-compatible endpoint (…/v1) that answers as the teacher (sequence mode only)."""
    teacher_key: str | None = None
    """API key of the endpoint (default: $OPENAI_API_KEY, else none)."""
    student: str = ""
    """The model to train: a store name or alias."""
    data: str = ""
    """Prompts (sequence, both) or training data with answers (logits): any file `xuetu data` reads."""
    mode: str = "sequence"
    """sequence (learn the teacher's answers), logits (match its distributions) or both."""
    cot: bool = False
    """Ask the teacher to reason step by step, and keep the reasoning in the answers."""
    out: str | None = None
    """Name of the new model (default: <student>-distill)."""
    method: str = "lora"
    """How the student is trained: a registered method; logits and both modes need one that is not prompt
    learning (lora, qlora, full)."""
    max_new_tokens: int = 512
    """Longest teacher answer, in tokens."""
    teacher_temperature: float = 0.0
    """Sampling temperature of the teacher's answers; 0 is greedy."""
    timeout: float = 600.0
    """Seconds to wait for one answer from an endpoint."""
    kd: KDArgs = field(default_factory=KDArgs)
    train: dict = field(default_factory=dict)
    """Fine-tune settings (TrainArgs: lr, epochs, batch_size, lora.r, …), e.g. --set train.lr=1e-3."""

    def __post_init__(self):
        if self.mode not in ("sequence", "logits", "both"):
            raise XuetuError(f"mode must be one of sequence, logits, both, got {self.mode!r}")
        if self.max_new_tokens < 1 or not 0 <= self.teacher_temperature <= 2 or self.timeout <= 0:
            raise XuetuError("max_new_tokens must be at least 1, teacher_temperature in [0, 2], timeout positive")
        taken = sorted({"model", "data", "method", "out"} & set(self.train))
        if taken:
            raise XuetuError(f"train.{taken[0]} is set by distill itself",
                             "Use --student, --data, --method and --out instead.")
        self.train_args()  # validates the fine-tune settings now, not after the teacher has answered

    def train_args(self, **given) -> "TrainArgs":
        """The fine-tune settings as TrainArgs (built here, so lr's per-method default follows `method`)."""
        return build(TrainArgs, {**self.train, "method": self.method, **given}, "train")


@dataclass
class ModelShape:
    """Architecture of a model trained from scratch (Llama- or Qwen2-style)."""

    architecture: str = "llama"
    """llama or qwen2."""
    n_layer: int = 6
    hidden: int = 256
    n_head: int = 4
    n_kv_head: int = 2
    intermediate: int = 768
    context: int = 256


@dataclass
class PretrainArgs:
    data: str = ""
    """A folder of .txt/.md files (or any file `xuetu data` reads) of raw text."""
    tokenizer: str = "smollm2:135m"
    """Reuse this model's tokenizer."""
    out: str = "tiny:latest"
    shape: ModelShape = field(default_factory=ModelShape)
    block_size: int = 256
    batch_size: int = 16
    grad_accum: int = 1
    lr: float = 3e-3
    weight_decay: float = 0.1
    warmup: float = 0.05
    schedule: str = "cosine"
    max_grad_norm: float = 1.0
    epochs: float = 1.0
    max_steps: int | None = None
    val_fraction: float = 0.05
    eval_every: int = 50
    save_every: int = 100
    seed: int = 42
    precision: str = "auto"

    def __post_init__(self):
        if self.shape.architecture not in ("llama", "qwen2"):
            raise XuetuError("shape.architecture must be llama or qwen2")
        if self.shape.hidden % self.shape.n_head or self.shape.n_head % self.shape.n_kv_head:
            raise XuetuError("shape.hidden must divide by n_head, and n_head by n_kv_head")
        if self.block_size > self.shape.context:
            raise XuetuError("block_size cannot exceed shape.context")


def _coerce(value, annotation, where: str):
    """Check (and gently convert) a value against a field's type annotation."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _coerce(value, a, where)
            except XuetuError as e:
                errors.append(e)
        raise XuetuError(f"{where}: {value!r} does not fit {annotation}")
    if origin is list:
        if isinstance(value, str):
            value = [v.strip() for v in value.split(",") if v.strip()]
        if not isinstance(value, list):
            raise XuetuError(f"{where} must be a list, got {value!r}")
        return [_coerce(v, args[0], where) for v in value] if args else value
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "1", "0"):
            return value.lower() in ("true", "yes", "1")
        raise XuetuError(f"{where} must be true or false, got {value!r}")
    if annotation is int:
        if isinstance(value, bool):
            raise XuetuError(f"{where} must be an integer, got {value!r}")
        if isinstance(value, int):
            return value
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
        raise XuetuError(f"{where} must be an integer, got {value!r}")
    if annotation is float:
        if isinstance(value, bool):
            raise XuetuError(f"{where} must be a number, got {value!r}")
        try:
            return float(value)
        except (TypeError, ValueError):
            raise XuetuError(f"{where} must be a number, got {value!r}") from None
    if annotation is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
        raise XuetuError(f"{where} must be a string, got {value!r}")
    return value


def build(cls, data: dict, where: str = ""):
    """An instance of the dataclass `cls` from a plain dict, with unknown keys and wrong types refused."""
    if not isinstance(data, dict):
        raise XuetuError(f"{where or cls.__name__} must be a mapping")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise XuetuError(f"unknown setting {where + '.' if where else ''}{unknown[0]}",
                         f"Known settings{' of ' + where if where else ''}: {', '.join(fields)}.")
    kwargs = {}
    for name, value in data.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            kwargs[name] = build(hint, value or {}, key)
        else:
            kwargs[name] = _coerce(value, hint, key)
    return cls(**kwargs)


def to_dict(obj) -> dict:
    return dataclasses.asdict(obj)


def load(cls, recipe: str | Path | None = None, overrides: list[str] | None = None, **given):
    """Recipe YAML < explicit keyword arguments < `key=value` overrides."""
    data: dict = {}
    if recipe:
        path = Path(recipe)
        if not path.is_file():
            raise XuetuError(f"recipe {path} not found", "See the recipes/ folder for examples.")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as e:
            raise XuetuError(f"{path} is not valid YAML: {e}") from None
    data.update({k: v for k, v in given.items() if v is not None})
    for item in overrides or []:
        if "=" not in item:
            raise XuetuError(f"--set takes key=value, got {item!r}")
        key, value = item.split("=", 1)
        target = data
        parts = key.strip().split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        target[parts[-1]] = yaml.safe_load(value) if value.strip() else value
    return build(cls, data)
