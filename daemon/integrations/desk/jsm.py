"""Internal comments on Jira Service Management requests.

- Add: `POST /rest/servicedeskapi/request/{issueIdOrKey}/comment` with `{"body", "public":
  false}`: an internal comment, seen by agents only
  (https://developer.atlassian.com/cloud/jira/service-desk/rest/api-group-request/#api-rest-servicedeskapi-request-issueidorkey-comment-post).
  The body is Jira wiki markup, so untrusted text goes in through `markup.jira_wiki_literal`.
- Look up: `GET /rest/servicedeskapi/request/{issueIdOrKey}/comment?start=&limit=`, a page of
  `values` with `isLastPage` (same page).
- Auth: the account's email and an API token, HTTP basic
  (https://developer.atlassian.com/cloud/jira/service-desk/basic-auth-for-rest-apis/).
- Limits: 429 with `Retry-After` (https://developer.atlassian.com/cloud/jira/platform/rate-limiting/);
  a comment of at most 32,767 characters (Jira's text field limit).
"""

from __future__ import annotations

from urllib.parse import quote

from daemon.integrations.desk import MAX_PAGES, HttpDesk, with_marker

COMMENT_CHARS = 32_767
PAGE_SIZE = 100


class Client(HttpDesk):
    vendor = "Jira Service Management"

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
