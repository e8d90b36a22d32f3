"""Internal notes on Zendesk Support tickets.

- Add: `PUT /api/v2/tickets/{id}.json` with `{"ticket": {"comment": {"body", "public": false}}}`
  (https://developer.zendesk.com/api-reference/ticketing/tickets/tickets/#update-ticket and
  "Adding ticket comments": a comment with `public: false` is an internal note, seen by agents
  only). `body` is plain text (only `html_body` is markup).
- Look up: `GET /api/v2/tickets/{id}/comments.json` with cursor pagination (`page[size]=100`,
  `meta.has_more`, `links.next`;
  https://developer.zendesk.com/api-reference/ticketing/tickets/ticket_comments/#list-comments).
- Auth: `{email}/token` and the API token, HTTP basic
  (https://developer.zendesk.com/api-reference/introduction/security-and-auth/#api-token).
- Who the token is (doctor, read-only): `GET /api/v2/users/me.json`, the authenticated user
  with its `role` (`end-user`, `agent` or `admin`) and `active`
  (https://developer.zendesk.com/api-reference/ticketing/users/users/#show-self). Only an
  agent or admin may add a comment to a ticket; an unauthenticated call is answered 401.
- Limits: 429 with `Retry-After` when over the account's rate limit
  (https://developer.zendesk.com/api-reference/introduction/rate-limits/); a comment body of at
  most 65,535 characters (support.zendesk.com "Comments are limited to 64 KB").
"""

from __future__ import annotations

from urllib.parse import quote

from daemon.clock import Clock
from daemon.integrations.base import DeskIdentity
from daemon.integrations.desk import MAX_PAGES, TIMEOUT_S, HttpDesk, with_marker

COMMENT_CHARS = 65_535


class Client(HttpDesk):
    vendor = "Zendesk"

    def __init__(self, url: str, email: str, token: str, *, verify: str | bool = True,
                 timeout_s: float = TIMEOUT_S, clock: Clock | None = None) -> None:
        super().__init__(url, f"{email}/token", token, verify=verify, timeout_s=timeout_s,
                         clock=clock)

    async def identity(self) -> DeskIdentity:
        """`GET /api/v2/users/me.json` (https://developer.zendesk.com/api-reference/ticketing/users/users/#show-self)."""
        def me() -> DeskIdentity:
            body = self.json(self.request("GET", f"{self.base}/api/v2/users/me.json",
                                          "show self"), "show self")
            user = body.get("user")
            user = user if isinstance(user, dict) else {}
            # Without valid credentials Zendesk may answer with an anonymous user (no id).
            role = str(user.get("role") or "") if user.get("id") is not None else "anonymous"
            return DeskIdentity(str(user.get("email") or user.get("name") or "?"), role,
                                user.get("active") is not False)

        return await self.run(me)

    def _ticket(self, ticket: str) -> str:
        return f"{self.base}/api/v2/tickets/{quote(ticket, safe='')}"

    async def has_note(self, ticket: str, marker: str) -> bool:
        def find() -> bool:
            url: str | None = f"{self._ticket(ticket)}/comments.json?page[size]=100"
            for _page in range(MAX_PAGES):
                if url is None:
                    break
                body = self.json(self.request("GET", url, "list comments"), "list comments")
                comments = body.get("comments")
                if isinstance(comments, list) and any(
                        isinstance(c, dict) and marker in str(c.get("body", ""))
                        for c in comments):
                    return True
                meta, links = body.get("meta"), body.get("links")
                more = isinstance(meta, dict) and meta.get("has_more") is True
                following = links.get("next") if isinstance(links, dict) else None
                # Follow only our own host: a `next` elsewhere would carry our credentials.
                url = following if more and isinstance(following, str) \
                    and following.startswith(self.base + "/") else None
            return False

        return await self.run(find)

    async def add_note(self, ticket: str, text: str, marker: str) -> None:
        def add() -> None:
            comment = {"body": with_marker(text, marker, COMMENT_CHARS), "public": False}
            self.request("PUT", f"{self._ticket(ticket)}.json", "add internal note",
                         json={"ticket": {"comment": comment}})

        await self.run(add)
