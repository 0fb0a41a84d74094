"""Generation: work items and their random streams, prompt sources and templates, the backend
protocol and the backends (``hf``: the Hugging Face decode loop). Importing this package does not
import torch; a backend is imported when it is opened."""

from .backend import (
    BACKENDS,
    GenerationBackend,
    GenerationRequest,
    GenerationSettings,
    check_backend,
    check_request,
    open_backend,
)
from .prompts import (
    PromptSource,
    first_human_turn,
    load_hh_rlhf,
    load_prompts,
    parse_prompt_source,
    prompts_sha256,
)
from .templates import check_template, format_prompt
from .work import Prompt, WorkItem, WorkPlan, make_batches, stream_id, work_items

__all__ = [
    "BACKENDS",
    "GenerationBackend",
    "GenerationRequest",
    "GenerationSettings",
    "Prompt",
    "PromptSource",
    "WorkItem",
    "WorkPlan",
    "check_backend",
    "check_request",
    "check_template",
    "first_human_turn",
    "format_prompt",
    "load_hh_rlhf",
    "load_prompts",
    "make_batches",
    "open_backend",
    "parse_prompt_source",
    "prompts_sha256",
    "stream_id",
    "work_items",
]
