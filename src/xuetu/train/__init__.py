"""Training: fine-tuning recipes (LoRA, QLoRA, full, prompt and prefix tuning) and pretraining from scratch,
with our own loops on Accelerate. Entry points: `finetune.finetune(TrainArgs)`, `pretrain.pretrain(PretrainArgs)`."""

import warnings

# transformers 5 deprecates a name PEFT still calls; harmless, and noisy in every run
warnings.filterwarnings("ignore", message=".*is_gradient_checkpointing.*", category=FutureWarning)
warnings.filterwarnings("ignore", message="Position ids are not supported for parameter efficient tuning.*")
