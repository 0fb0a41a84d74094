"""Prompt templates: the text the aligned model is conditioned on."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError

__all__ = ["check_template", "format_prompt"]


def check_template(template: Any) -> str:
    """A template contains ``{prompt}`` (filled in by plain replacement, so other braces are
    kept as they are), or is ``chat`` for the tokenizer's chat template."""
    if not isinstance(template, str) or ("{prompt}" not in template and template != "chat"):
        raise ConfigError(f"`template` must contain '{{prompt}}' or be 'chat', got {template!r}")
    return template


def format_prompt(tokenizer: Any, template: str, prompt: str) -> str:
    """The model's context for a prompt: ``template`` with ``{prompt}`` replaced, or the
    tokenizer's chat template (one user turn, generation prompt added) for ``"chat"``."""
    check_template(template)
    if template == "chat":
        if getattr(tokenizer, "chat_template", None) is None:
            raise ConfigError("`template` is 'chat' but the tokenizer has no chat template")
        return tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
    return template.replace("{prompt}", prompt)
