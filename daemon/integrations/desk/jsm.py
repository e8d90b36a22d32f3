"""Internal comments on Jira Service Management requests.

- Add: `POST /rest/servicedeskapi/request/{issueIdOrKey}/comment` with `{"body", "public":
  false}`: an internal comment, seen by agents only
  (https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-request/#api-rest-servicedeskapi-request-issueidorkey-comment-post).
  The body is Jira wiki markup, so untrusted text goes in through `markup.jira_wiki_literal`.
- Look up: `GET /rest/servicedeskapi/request/{issueIdOrKey}/comment?start=&limit=`, a page of
  `values` with `isLastPage` (same page).
- Auth: the account's email and an API token, HTTP basic
  (https://developer.atlassian.com/cloud/jira/service-desk/basic-auth-for-rest-apis/).
- Who the token is (doctor, read-only): `GET /rest/api/3/myself`, the account with
  `accountId`, `emailAddress`, `displayName` and `active`
  (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-myself/#api-rest-api-3-myself-get);
  a wrong email or token is answered 401.
- Limits: 429 with `Retry-After` (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/);
  a comment of at most 32,767 characters (Jira's text field limit).
"""

from __future__ import annotations

from urllib.parse import quote

from daemon.integrations.base import DeskIdentity
from daemon.integrations.desk import MAX_PAGES, HttpDesk, with_marker

COMMENT_CHARS = 32_767
PAGE_SIZE = 100


class Client(HttpDesk):
    vendor = "Jira Service Management"

    async def identity(self) -> DeskIdentity:
        """`GET /rest/api/3/myself` (https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-myself/#api-rest-api-3-myself-get)."""
        def myself() -> DeskIdentity:
            user = self.json(self.request("GET", f"{self.base}/rest/api/3/myself",
                                          "get current user"), "get current user")
            name = user.get("emailAddress") or user.get("displayName") or user.get("accountId")
            return DeskIdentity(str(name or "?"), None, user.get("active") is not False)

        return await self.run(myself)

    def _comments(self, ticket: str) -> str:
        return f"{self.base}/rest/servicedeskapi/request/{quote(ticket, safe='')}/comment"

    async def has_note(self, ticket: str, marker: str) -> bool:
        def find() -> bool:
            for page in range(MAX_PAGES):
                body = self.json(self.request(
                    "GET", self._comments(ticket), "list comments",
                    params={"start": page * PAGE_SIZE, "limit": PAGE_SIZE}), "list comments")
                values = body.get("values")
                if isinstance(values, list) and any(
                        isinstance(c, dict) and marker in str(c.get("body", ""))
                        for c in values):
                    return True
                if body.get("isLastPage") is not False:
                    return False
            return False

        return await self.run(find)

    async def add_note(self, ticket: str, text: str, marker: str) -> None:
        def add() -> None:
            self.request("POST", self._comments(ticket), "add internal comment",
                         json={"body": with_marker(text, marker, COMMENT_CHARS), "public": False})

        await self.run(add)
