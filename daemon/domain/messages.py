"""Chat messages as facts, not markup: what to say and whom to notify, for any chat to render.

The core words its notes to people (a reply to a click, a reminder, a failure) as a `Message`:
a sequence of parts, each literal `Text` (never markup, whoever wrote it: a vendor's reason,
an agent's name, our own words), a `Mention` of a chat user tier2gate chose to notify (an
approver, the person who decided), a `Link` to a URL under a label tier2gate chose or
`Strong` literal text the reader should see first (a heading, a customer's name). The
chat adapter renders a message in its own syntax and escapes every `Text` at that sink; a
plain-text chat shows `Message.plain`.

Stored in job payloads as `Message.model_dump(mode="json")`:
`{"parts": [{"text": "Reminder: "}, {"mention": "U123"}]}`.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import BaseModel, ConfigDict


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Text(_Frozen):
    """Literal text: shown as written, never read as markup."""

    text: str


class Mention(_Frozen):
    """A chat user (by the chat's user id) tier2gate means to notify. An adapter shows a value
    that is no user id of its chat as text."""

    mention: str


class Link(_Frozen):
    """A link to `url` (a vendor's, untrusted: an adapter links only an http(s) URL), shown as
    `label`, which tier2gate chose."""

    url: str
    label: str


class Strong(_Frozen):
    """Literal text shown emphasised where the chat can (bold), as it is where it cannot."""

    strong: str


Part = Text | Mention | Link | Strong


class Message(_Frozen):
    """A chat message as parts, in order. `message + x` joins a message, part or string (as
    `Text`) to it."""

    parts: tuple[Part, ...] = ()

    def __add__(self, other: Message | Part | str) -> Message:
        return Message(parts=(*self.parts, *message(other).parts))

    def __bool__(self) -> bool:
        return bool(self.parts)

    @property
    def plain(self) -> str:
        """The message as plain text (a mention as `@user_id`): for a chat without markup,
        logs and tests."""
        return "".join(_plain(p) for p in self.parts)

    @property
    def mentioned(self) -> tuple[str, ...]:
        """The user ids mentioned, in order."""
        return tuple(p.mention for p in self.parts if isinstance(p, Mention))


def _plain(part: Part) -> str:
    if isinstance(part, Text):
        return part.text
    if isinstance(part, Strong):
        return part.strong
    if isinstance(part, Mention):
        return f"@{part.mention}"
    return f"{part.label} ({part.url})"


def strong(text: str) -> Message:
    """`text` emphasised; empty for no text."""
    return Message(parts=(Strong(strong=text),)) if text else Message()


def message(*pieces: Message | Part | str) -> Message:
    """One message from messages, parts and strings (each string a literal `Text`)."""
    parts: list[Part] = []
    for piece in pieces:
        if isinstance(piece, Message):
            parts += piece.parts
        elif isinstance(piece, str):
            if piece:  # an empty text says nothing: kept out, so `Message()` is the empty one
                parts.append(Text(text=piece))
        else:
            parts.append(piece)
    return Message(parts=tuple(parts))


def mention(user_id: str) -> Message:
    return Message(parts=(Mention(mention=user_id),))


def joined(pieces: Iterable[Message | Part | str], separator: str) -> Message:
    """The pieces one after another with `separator` (literal text) between them."""
    result = Message()
    for n, piece in enumerate(pieces):
        result = result + (separator if n else "") + piece
    return result


def mentions(user_ids: Iterable[str], separator: str = " ") -> Message:
    """Each user mentioned, `separator` between them; empty for no users."""
    return joined((mention(u) for u in user_ids), separator)
