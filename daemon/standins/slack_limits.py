"""Slack's documented size limits, as the stand-in enforces them: a value over a limit gets
the refusal Slack gives, so tests and the demo see what production would.

Sources: chat.postMessage `text` (`msg_too_long`)
https://docs.slack.dev/reference/methods/chat.postMessage; header 150
https://docs.slack.dev/reference/block-kit/blocks/header-block; section text 3000, fields 2000
https://docs.slack.dev/reference/block-kit/blocks/section-block; text objects 3000
https://docs.slack.dev/reference/block-kit/composition-objects/text-object; button text 75,
value 2000, action_id 255 https://docs.slack.dev/reference/block-kit/block-elements/button-element;
modal title/submit/close 24, private_metadata 3000
https://docs.slack.dev/reference/views/modal-views; plain_text_input max_length <= 3000
https://docs.slack.dev/reference/block-kit/block-elements/plain-text-input-element.
"""

from __future__ import annotations

from typing import Any

TEXT_MAX_CHARS = 40_000
BLOCK_TEXT_MAX_CHARS = {"header": 150, "section": 3000}
TEXT_OBJECT_MAX_CHARS = 3000
SECTION_FIELD_MAX_CHARS = 2000
BUTTON_TEXT_MAX_CHARS = 75
BUTTON_VALUE_MAX_CHARS = 2000
ID_MAX_CHARS = 255
VIEW_LABEL_MAX_CHARS = 24
PRIVATE_METADATA_MAX_CHARS = 3000
INPUT_MAX_CHARS = 3000


def message_error(args: dict[str, Any]) -> str:
    """The `error` Slack answers for a message over its limits, or "" when it fits."""
    if len(str(args.get("text", ""))) > TEXT_MAX_CHARS:
        return "msg_too_long"
    blocks = args.get("blocks") or []
    return "invalid_blocks" if any(_block_too_long(b) for b in blocks) else ""


def view_error(view: dict[str, Any]) -> str:
    """The `error` Slack answers for a modal over its limits, or "" when it fits."""
    labels = [_text(view.get(name)) for name in ("title", "submit", "close")]
    if any(len(label) > VIEW_LABEL_MAX_CHARS for label in labels):
        return "invalid_arguments"
    if len(str(view.get("private_metadata", ""))) > PRIVATE_METADATA_MAX_CHARS:
        return "invalid_arguments"
    for block in view.get("blocks") or []:
        element = block.get("element") or {}
        if element.get("type") == "plain_text_input":
            cap = min(int(element.get("max_length") or INPUT_MAX_CHARS), INPUT_MAX_CHARS)
            if len(str(element.get("initial_value") or "")) > cap:
                return "invalid_arguments"
    return ""


def _block_too_long(block: dict[str, Any]) -> bool:
    kind = block.get("type", "")
    if len(str(block.get("block_id", ""))) > ID_MAX_CHARS:
        return True
    if kind in BLOCK_TEXT_MAX_CHARS and len(_text(block.get("text"))) > BLOCK_TEXT_MAX_CHARS[kind]:
        return True
    if any(len(_text(f)) > SECTION_FIELD_MAX_CHARS for f in block.get("fields") or []):
        return True
    for element in block.get("elements") or []:
        if kind == "context" and len(_text(element)) > TEXT_OBJECT_MAX_CHARS:
            return True
        if element.get("type") == "button" and (
                len(_text(element.get("text"))) > BUTTON_TEXT_MAX_CHARS
                or len(str(element.get("value", ""))) > BUTTON_VALUE_MAX_CHARS
                or len(str(element.get("action_id", ""))) > ID_MAX_CHARS):
            return True
    return False


def _text(obj: object) -> str:
    """The text of a text object (`{"type": "plain_text", "text": ...}`) or a bare string."""
    if isinstance(obj, dict):
        return str(obj.get("text", ""))
    return obj if isinstance(obj, str) else ""
