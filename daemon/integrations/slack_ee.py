"""The Escalation Engineers' offer message in Slack: Block Kit and action ids.

Kept beside `slack` (the client); `sources.slack` reads the clicks back (as `EEOfferClick`)
with the action ids in `sources.slack_ids`. Block Kit stays in the Slack modules and the core
sees only `EEOfferView`.
"""

from __future__ import annotations

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
)

from daemon.integrations.base import EEOfferView
from daemon.integrations.shorten import shorten, shorten_mrkdwn
from daemon.markup import slack_link, slack_literal, slack_mention
from daemon.sources.slack_ids import (
    ENGINEERING_ACTION,
    RESOLVED_ACTION,
    TAKE_ACTION,
)

EE_BLOCK = "tier2gate_ee"
OFFER_EVENT = "tier2gate_ee_offer"  # message metadata: the escalation the offer is about

_HEADER_MAX_CHARS = 150  # https://docs.slack.dev/reference/block-kit/blocks/header-block
_SECTION_MAX_CHARS = 3000  # https://docs.slack.dev/reference/block-kit/blocks/section-block
_FIELD_MAX_CHARS = 300  # our own budget per untrusted value inside the section


def _lit(text: str) -> str:
    return slack_literal(shorten(text, _FIELD_MAX_CHARS))


def offer_text(view: EEOfferView) -> str:
    """The notification text (and what clients without blocks show)."""
    who = " ".join(slack_mention(u) for u in view.offered_to)
    kind = "Emergency" if view.emergency else "Request for help"
    return f"{kind} for the Escalation Engineers {who}: {_lit(view.title)}".strip()


def offer_blocks(view: EEOfferView) -> list[Block]:
    kind = "Emergency" if view.emergency else "Request for help"
    blocks: list[Block] = []
    if view.shadow:
        blocks.append(SectionBlock(text=MarkdownTextObject(
            text=":warning: *SHADOW*: tier2gate is rehearsing; nobody is paged and no issue is "
                 "opened, whatever is clicked")))
    blocks.append(HeaderBlock(text=shorten(f"{kind}: {view.title or '(untitled)'}",
                                           _HEADER_MAX_CHARS)))
    lines = [f"*{_lit(view.reference)}* · {_lit(view.customer)} · severity "
             f"*{_lit(view.severity)}*",
             f"*Why:* {_lit(view.reason)}",
             "*On rotation:* " + (" ".join(slack_mention(u) for u in view.offered_to)
                                  or "nobody")]
    if view.emergency and view.wait_minutes and not view.owner_id:
        lines.append(f":hourglass: The SMOC is asked in {view.wait_minutes:g} minutes unless an "
                     "EE takes it and resolves it without Engineering.")
    if view.emergency and view.smoc_asked and not view.went_on:
        lines.append(":arrow_right: The SMOC was asked: they decide whether Tier 2 is paged.")
    if view.went_on:
        lines.append(":arrow_right: No EE took it in time: it went on to "
                     + ("the SMOC" if view.emergency else "Tier 2 (the request-for-help issue)")
                     + ". An EE who takes it now is its DRI there.")
    if view.owner_id:
        lines.append(f"*DRI:* {slack_mention(view.owner_id)}")
    if view.links:
        lines.append(" · ".join(slack_link(url, name) for name, url in view.links.items()))
    blocks.append(SectionBlock(text=MarkdownTextObject(
        text=shorten_mrkdwn("\n".join(lines), _SECTION_MAX_CHARS))))
    if view.outcome or view.ended:
        said = {"resolved": ":white_check_mark: Resolved without Engineering",
                "engineering": ":arrow_right: Needs Engineering: continues to Tier 2"}
        text = said.get(view.outcome, "") + (
            f" by {slack_mention(view.outcome_by or view.owner_id)}" if view.outcome else "")
        if view.ended:
            text = (text + ". " if text else "") + _lit(view.ended)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text)]))
        if view.take_over:
            # Sent on to Engineering, the escalation is still its EE's: after a rotation
            # change an incoming EE takes it over.
            blocks.append(ActionsBlock(block_id=EE_BLOCK, elements=[
                ButtonElement(text="Take it over", action_id=TAKE_ACTION,
                              value=view.escalation_id)]))
    elif not view.owner_id:
        blocks.append(ActionsBlock(block_id=EE_BLOCK, elements=[
            ButtonElement(text="Take it", action_id=TAKE_ACTION, value=view.escalation_id,
                          style="primary")]))
    else:
        blocks.append(ActionsBlock(block_id=EE_BLOCK, elements=[
            ButtonElement(text="Resolved without Engineering", action_id=RESOLVED_ACTION,
                          value=view.escalation_id, style="primary"),
            ButtonElement(text="Needs Engineering", action_id=ENGINEERING_ACTION,
                          value=view.escalation_id),
            # After a rotation change the incoming EEs take over what the outgoing owned.
            ButtonElement(text="Take it over", action_id=TAKE_ACTION,
                          value=view.escalation_id)]))
    return blocks
