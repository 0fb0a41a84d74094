"""Models: loading causal LMs and tokenizers (local directory, hub id, cache, offline), their
identities, teacher-forced scoring, and the reward sources behind one registry."""

from ..errors import ModelError, ModelNotFoundError
from .loading import (
    DTYPES,
    LoadedModel,
    check_causal_lm,
    check_device,
    check_dtype,
    check_model_files,
    from_pretrained,
    load_causal_lm,
    load_tokenizer,
    local_model_dir,
    model_config,
    model_identity,
    position_limit,
    resolve_device,
    resolve_dtype,
)
from .rewards import (
    MODEL_FORMATS,
    REWARD_KINDS,
    RewardSpec,
    check_reward,
    implicit_reward,
    load_reward,
    parse_reward,
)

__all__ = [
    "DTYPES",
    "LoadedModel",
    "MODEL_FORMATS",
    "ModelError",
    "ModelNotFoundError",
    "REWARD_KINDS",
    "RewardSpec",
    "check_causal_lm",
    "check_device",
    "check_dtype",
    "check_model_files",
    "check_reward",
    "from_pretrained",
    "implicit_reward",
    "load_causal_lm",
    "load_reward",
    "load_tokenizer",
    "local_model_dir",
    "model_config",
    "model_identity",
    "parse_reward",
    "position_limit",
    "resolve_device",
    "resolve_dtype",
]
