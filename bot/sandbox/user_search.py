"""`$search` and `$filter=startswith(...)` on `/users`, read and matched the way Graph documents them.

Sources (Microsoft Graph documentation, microsoft-graph-docs-contrib):
- concepts/search-query-parameter.md, "Using $search on directory object collections": the syntax is
  `"property:text"` clauses joined by upper-case `AND` / `OR` (parentheses allowed); the whole clause sits inside
  double quotes, and a `"` or `\\` inside it is escaped with a backslash. **displayName** is matched by tokens
  (words split at spaces, symbols, digits and a lower-to-upper case change; tokens match in any order, regardless of
  case; a search token matches the start of a name token, so `Guthr` finds `Guthrie`); any other string property
  "defaults to `$filter` `startswith` behavior".
- concepts/aad-advanced-queries.md: `$search` on directory objects works only in advanced queries; without the
  header `ConsistencyLevel: eventual` Graph answers 400 `Request_UnsupportedQuery` ("Request with $search query
  parameter only works through MSGraph with a special request header: 'ConsistencyLevel: eventual'"). `$search`
  needs no `$count`; `$count=true` without the header is silently ignored.
- includes/filter-directory-objects.md: `startsWith` works by default (no advanced query) on displayName,
  givenName, surname, mail, userPrincipalName and department of users.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.sandbox.errors import GraphError, bad_request
from bot.sandbox.tenant import TenantUser

SEARCH_NEEDS_HEADER = (
    "Request with $search query parameter only works through MSGraph with a special request header: "
    "'ConsistencyLevel: eventual'"
)
# Properties a user's `$search` clause or `startswith` filter may name, by their Graph name (compared case-blind).
STRING_PROPERTIES: dict[str, Callable[[TenantUser], str | None]] = {
    "displayName": lambda user: user.display_name,
    "givenName": lambda user: user.given_name,
    "surname": lambda user: user.surname,
    "mail": lambda user: user.mail,
    "userPrincipalName": lambda user: user.user_principal_name,
    "department": lambda user: user.department,
    "jobTitle": lambda user: user.job_title,
}
# Graph's table: startsWith works by default on these (jobTitle has no startsWith).
STARTSWITH_PROPERTIES = frozenset({"displayName", "givenName", "surname", "mail", "userPrincipalName", "department"})
TOKENIZED_PROPERTIES = frozenset({"displayName"})

UserTest = Callable[[TenantUser], bool]

_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)
_CASE_CHANGE = re.compile(r"(?<=[a-z])(?=[A-Z])")
_STARTSWITH = re.compile(
    r"\s*startswith\s*\(\s*(?P<property>[A-Za-z]+)\s*,\s*'(?P<value>(?:[^']|'')*)'\s*\)\s*", re.IGNORECASE
)
_FILTER_JOIN = re.compile(r"\s+(and|or)\s+", re.IGNORECASE)


def tokens(text: str) -> set[str]:
    """Graph's tokens of a display name or a search string: words split at spaces, symbols, digits and a
    lower-to-upper case change, lower-cased; words joined only by symbols also count joined (`hello.world` gives
    `hello`, `world` and `helloworld`)."""
    found: set[str] = set()
    for chunk in text.split():
        words: list[str] = []
        for word in _WORD.findall(chunk):
            words.extend(part for part in _CASE_CHANGE.split(word) if part)
        found.update(word.lower() for word in words)
        if len(words) > 1:
            found.add("".join(words).lower())
    return found


def search_tokens(text: str) -> list[str]:
    words: list[str] = []
    for chunk in text.split():
        for word in _WORD.findall(chunk):
            words.extend(part.lower() for part in _CASE_CHANGE.split(word) if part)
    return words


def _clause_test(property_name: str, text: str) -> UserTest:
    read = STRING_PROPERTIES[property_name]
    if property_name in TOKENIZED_PROPERTIES:
        wanted = search_tokens(text)

        def tokenized(user: TenantUser) -> bool:
            have = tokens(read(user) or "")
            return bool(wanted) and all(any(token.startswith(part) for token in have) for part in wanted)

        return tokenized
    return _clause_test_prefix(property_name, text)


def _property(name: str, allowed: frozenset[str] | None = None) -> str | None:
    canonical = {key.lower(): key for key in STRING_PROPERTIES}
    found = canonical.get(name.lower())
    if found is None or (allowed is not None and found not in allowed):
        return None
    return found


@dataclass
class _Reader:
    """A recursive-descent reader of `"clause" AND ("clause" OR "clause")`."""

    text: str
    position: int = 0

    def fail(self, what: str) -> GraphError:
        return bad_request(f"Syntax error: {what} at position {self.position} in '{self.text}'.")

    def skip_spaces(self) -> None:
        while self.position < len(self.text) and self.text[self.position] == " ":
            self.position += 1

    def expression(self) -> UserTest:
        test = self.conjunction()
        while self.keyword("OR"):
            left, right = test, self.conjunction()
            test = lambda user, a=left, b=right: a(user) or b(user)  # noqa: E731
        return test

    def conjunction(self) -> UserTest:
        test = self.term()
        while self.keyword("AND"):
            left, right = test, self.term()
            test = lambda user, a=left, b=right: a(user) and b(user)  # noqa: E731
        return test

    def keyword(self, word: str) -> bool:
        self.skip_spaces()
        end = self.position + len(word)
        # Upper case only, as Graph requires; `or` in lower case is a syntax error there too.
        if self.text[self.position : end] == word and (end == len(self.text) or self.text[end] in ' ("'):
            self.position = end
            return True
        return False

    def term(self) -> UserTest:
        self.skip_spaces()
        if self.position >= len(self.text):
            raise self.fail("a quoted clause is missing")
        if self.text[self.position] == "(":
            self.position += 1
            test = self.expression()
            self.skip_spaces()
            if self.position >= len(self.text) or self.text[self.position] != ")":
                raise self.fail("')' expected")
            self.position += 1
            return test
        if self.text[self.position] != '"':
            raise self.fail(f"character '{self.text[self.position]}' is not valid (clauses go inside double quotes)")
        return self.clause()

    def clause(self) -> UserTest:
        self.position += 1  # the opening quote
        chars: list[str] = []
        while True:
            if self.position >= len(self.text):
                raise self.fail("the closing double quote is missing")
            char = self.text[self.position]
            self.position += 1
            if char == "\\":
                if self.position >= len(self.text) or self.text[self.position] not in '"\\':
                    raise self.fail('only \\" and \\\\ may be escaped')
                chars.append(self.text[self.position])
                self.position += 1
            elif char == '"':
                break
            else:
                chars.append(char)
        body = "".join(chars)
        name, colon, value = body.partition(":")
        if not colon:
            raise bad_request(f"Invalid search clause '{body}': write it as \"property:text\".")
        property_name = _property(name.strip())
        if property_name is None:
            raise bad_request(f"Could not find a property named '{name.strip()}' on type 'microsoft.graph.user'.")
        return _clause_test(property_name, value)


def search_test(search: str) -> UserTest:
    """The users a `$search` value selects; a malformed one raises Graph's 400."""
    reader = _Reader(search.strip())
    test = reader.expression()
    reader.skip_spaces()
    if reader.position != len(reader.text):
        raise reader.fail("AND or OR expected")
    return test


def filter_test(filter_text: str) -> UserTest:
    """`startswith(property,'text')` terms joined by `and` / `or` (left to right, `and` first): the filters on
    users the sandbox answers. Anything else gets Graph's 400 for an unsupported filter."""
    parts = _FILTER_JOIN.split(filter_text.strip())
    alternatives: list[list[UserTest]] = [[]]
    for index, part in enumerate(parts):
        if index % 2 == 1:
            if part.lower() == "or":
                alternatives.append([])
            continue
        matched = _STARTSWITH.fullmatch(part)
        if matched is None:
            raise bad_request(
                f"The sandbox answers only startswith(property,'text') filters on users; got '{filter_text}'.",
                code="Request_UnsupportedQuery",
            )
        property_name = _property(matched["property"], STARTSWITH_PROPERTIES)
        if property_name is None:
            raise bad_request(
                f"Unsupported or invalid query filter clause specified for property '{matched['property']}' of "
                "resource 'User'.",
                code="Request_UnsupportedQuery",
            )
        alternatives[-1].append(_clause_test_prefix(property_name, matched["value"].replace("''", "'")))
    return lambda user: any(all(test(user) for test in group) for group in alternatives)


def _clause_test_prefix(property_name: str, text: str) -> UserTest:
    read = STRING_PROPERTIES[property_name]
    prefix = text.casefold()
    return lambda user: (read(user) or "").casefold().startswith(prefix)
