"""Which person a typed name means: who may look, where the bot looks, and what it answers.

A name is never an identity: it only selects a *target*, and whatever is found goes through the very rules a typed
object id would (the command is re-run with the id). Who may search is decided before any search, from the caller
the authenticated activity names:
- operators search the directory (issue, revoke, status, and onboard);
- for onboard, a manager who is not an operator only ever looks among their own direct reports;
- anyone else gets the typed command's own refusal, audited, and the directory is not searched at all.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from bot.domain.audit import AuditAction
from bot.domain.auditing import Auditor, Subject
from bot.domain.errors import Refused, Rule, TapError
from bot.domain.model import Caller, DirectoryUser, TapPolicy
from bot.domain.onboarding import OnboardingService
from bot.domain.ports import AuditLog, Clock, Directory
from bot.domain.service import TapService

Purpose = Literal["issue", "onboard", "revoke", "status"]

MAX_CHOICES = 10  # buttons on a "Which Megan?" card; more candidates than this: "narrow it down"
MAX_SUGGESTIONS = 15  # what a typeahead lists at most (Teams shows about as many)
MAX_CLOSEST = 5  # closest suggestions in a "nobody is called that" sentence
SUGGEST_CONCURRENCY = 4  # candidates whose rules are checked at once (each check is several Graph reads)
PREFIX_LENGTH = 3  # "Meg" for "Megann": the prefix tried when no whole word matches

ACTIONS: dict[Purpose, AuditAction] = {
    "issue": AuditAction.ISSUE,
    "onboard": AuditAction.ONBOARD,
    "revoke": AuditAction.REVOKE,
    "status": AuditAction.STATUS,
}
NO_REPORTS = (
    "You can only request onboarding passes for your own direct reports, and nobody reports to you in Entra. "
    "Ask IT if the manager is wrong."
)
UNCHECKED = "I couldn't check this person's rules just now; try again in a moment."

_WORD = re.compile(r"[^\W_]+", re.UNICODE)


@dataclass(frozen=True)
class OnePerson:
    user: DirectoryUser


@dataclass(frozen=True)
class SeveralPeople:
    candidates: tuple[DirectoryUser, ...]  # at most MAX_CHOICES, sorted by name
    more: bool  # more people fit than the card can offer: the caller should narrow it down


@dataclass(frozen=True)
class NoPerson:
    suggestions: tuple[DirectoryUser, ...]
    matched: str = ""  # what the suggestions were found with: a word of the name, or its first letters
    prefix: bool = False  # `matched` is the first letters of a word, not a whole word
    among_reports: bool = False  # only the caller's direct reports were looked at


Resolution = OnePerson | SeveralPeople | NoPerson


@dataclass(frozen=True)
class Candidate:
    """A person a typeahead lists, with the sentence saying why they cannot get a pass (None: they can)."""

    user: DirectoryUser
    refusal: str | None


def words(text: str) -> list[str]:
    return [word.casefold() for word in _WORD.findall(text)]


def name_fits(user: DirectoryUser, text: str) -> bool:
    """The same test Graph's search applies (graph_json.user_search_clauses), for lists the bot already holds:
    every word typed starts a word of the display name, or the mail address or user principal name starts with
    what was typed."""
    typed = text.strip().casefold()
    if not typed:
        return False
    name_words = words(user.display_name)
    wanted = words(text)
    if wanted and all(any(word.startswith(part) for word in name_words) for part in wanted):
        return True
    return any((value or "").casefold().startswith(typed) for value in (user.user_principal_name, user.mail))


def _sorted(users: Sequence[DirectoryUser]) -> list[DirectoryUser]:
    return sorted(users, key=lambda user: (user.display_name.casefold(), user.user_principal_name.casefold()))


class PeopleFinder:
    """Resolves a typed name to one person, a short choice, or the closest suggestions; lists candidates (with
    their refusals) for a typeahead."""

    def __init__(
        self,
        *,
        tap: TapService,
        onboarding: OnboardingService,
        directory: Directory,
        audit: AuditLog,
        clock: Clock,
        concurrency: int = SUGGEST_CONCURRENCY,
    ) -> None:
        self._tap = tap
        self._onboarding = onboarding
        self._directory = directory
        self._auditor = Auditor(audit, clock)
        self._concurrency = max(1, concurrency)

    async def resolve(self, caller: Caller, text: str, *, purpose: Purpose) -> Resolution:
        """The typed command's refusal (audited) for anyone who may not search; otherwise what the name fits."""
        subject = Subject(text)
        return await self._auditor.audited(
            ACTIONS[purpose], caller, subject, lambda: self._resolve(caller, text, purpose)
        )

    async def suggest(
        self, caller: Caller, text: str, *, limit: int = MAX_SUGGESTIONS, purpose: Purpose = "issue"
    ) -> list[Candidate]:
        """Up to `limit` (at most 15) people the text fits, each with the refusal a command for them would get now.

        Raises the typed command's refusal for a caller who may not search (not audited here: a typeahead asks on
        every keystroke; the command the caller finally sends is audited). The rules are checked for at most
        `concurrency` candidates at a time, with the tenant policy read once.
        """
        reports = await self._scope(caller, purpose)
        limit = max(0, min(limit, MAX_SUGGESTIONS))
        if limit == 0:
            return []
        if not text.strip():
            users = _sorted(reports)[:limit] if reports is not None else []
        else:
            users = _sorted(await self._find(text, reports, limit))
        if not users:
            return []
        policy = await self._tap.tap_policy()
        gate = asyncio.Semaphore(self._concurrency)

        async def judged(user: DirectoryUser) -> Candidate:
            async with gate:
                return Candidate(user, await self._refusal(caller, user, purpose, policy))

        return list(await asyncio.gather(*(judged(user) for user in users)))

    # --- the work ------------------------------------------------------------------------------------------

    async def _scope(self, caller: Caller, purpose: Purpose) -> list[DirectoryUser] | None:
        """None: the caller may search the directory. A list: the only people this caller may look among."""
        if purpose != "onboard":
            await self._tap.require_operator(caller)  # the very refusal the typed command gives
            return None
        await self._tap.require_known_caller(caller)
        if await self._tap.is_operator(caller):
            return None
        reports = await self._directory.direct_reports(caller.object_id)
        if not reports:
            raise Refused(Rule.NOT_MANAGER, NO_REPORTS)
        return reports

    async def _find(self, text: str, reports: list[DirectoryUser] | None, limit: int) -> list[DirectoryUser]:
        if reports is not None:
            return [user for user in _sorted(reports) if name_fits(user, text)][:limit]
        return await self._directory.search_users(text, limit=limit)

    async def _resolve(self, caller: Caller, text: str, purpose: Purpose) -> Resolution:
        reports = await self._scope(caller, purpose)
        found = await self._find(text, reports, MAX_CHOICES + 1)
        if len(found) == 1:
            return OnePerson(found[0])
        if found:
            return SeveralPeople(tuple(_sorted(found)[:MAX_CHOICES]), more=len(found) > MAX_CHOICES)
        return await self._closest(text, reports)

    async def _closest(self, text: str, reports: list[DirectoryUser] | None) -> NoPerson:
        """Nobody fits the whole text: the people its first or last word fits, else those whose name starts with
        that word's first letters (at most four more searches)."""
        typed = text.split()
        tries: list[tuple[str, bool]] = []
        if len(typed) > 1:
            tries += [(typed[0], False), (typed[-1], False)]
        for word in dict.fromkeys(typed[:1] + typed[-1:]):
            if len(word) > PREFIX_LENGTH:
                tries.append((word[:PREFIX_LENGTH], True))
        for attempt, prefix in dict.fromkeys(tries):
            found = await self._find(attempt, reports, MAX_CLOSEST)
            if found:
                return NoPerson(tuple(_sorted(found)), attempt, prefix, among_reports=reports is not None)
        if reports is not None:
            return NoPerson(tuple(_sorted(reports)[:MAX_CLOSEST]), among_reports=True)
        return NoPerson(())

    async def _refusal(self, caller: Caller, user: DirectoryUser, purpose: Purpose, policy: TapPolicy) -> str | None:
        """The rule code a single command runs, for this candidate; deny by default when it cannot be checked."""
        if purpose in ("revoke", "status"):
            return None  # operators may look up and revoke anyone's pass
        try:
            if purpose == "onboard":
                await self._onboarding.check(caller, user)
            else:
                await self._tap.check_target(caller, user, policy=policy)
        except Refused as refusal:
            return refusal.user_message
        except TapError:
            return UNCHECKED
        return None
