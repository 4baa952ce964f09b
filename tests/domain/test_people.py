"""PeopleFinder: who may search, where it looks, and what a typed name resolves to (in-memory world)."""

from __future__ import annotations

import asyncio

import pytest

from bot.domain.audit import AuditOutcome
from bot.domain.errors import Refused, Rule
from bot.domain.model import DirectoryUser, PassRequest
from bot.domain.people import (
    MAX_CHOICES,
    MAX_SUGGESTIONS,
    NoPerson,
    OnePerson,
    PeopleFinder,
    SeveralPeople,
    name_fits,
)
from tests.domain.world import ADELE, LEE, MEGAN, World, caller
from tests.fakes import PROTECTED

MEGAN_FISCHER = DirectoryUser(
    "e0000000-0000-0000-0000-00000000000e", "meganf@contoso.test", "Megan Fischer", department="Sales"
)
LIDIA = DirectoryUser("f0000000-0000-0000-0000-00000000000f", "lidia@contoso.test", "Lidia Holloway")


def finder(world: World, *, concurrency: int = 4) -> PeopleFinder:
    return PeopleFinder(
        tap=world.tap,
        onboarding=world.onboarding,
        directory=world.directory,
        audit=world.audit,
        clock=world.clock,
        concurrency=concurrency,
    )


def test_a_name_fits_by_words_in_any_order_or_by_the_start_of_mail_and_upn() -> None:
    assert name_fits(MEGAN, "megan")
    assert name_fits(MEGAN, "Bowen Megan")
    assert name_fits(MEGAN, "meg bow")
    assert name_fits(MEGAN, "megan@contoso")
    assert not name_fits(MEGAN, "egan")
    assert not name_fits(MEGAN, "Megan Fischer")
    assert not name_fits(MEGAN, "   ")


async def test_one_match_several_and_none(world: World) -> None:
    world.directory.add(MEGAN_FISCHER)
    people = finder(world)

    assert await people.resolve(caller(ADELE), "Megan Bowen", purpose="issue") == OnePerson(MEGAN)
    several = await people.resolve(caller(ADELE), "megan", purpose="issue")
    assert several == SeveralPeople((MEGAN, MEGAN_FISCHER), more=False)
    nobody = await people.resolve(caller(ADELE), "Megan Smith", purpose="status")
    assert isinstance(nobody, NoPerson)
    assert nobody.suggestions == (MEGAN, MEGAN_FISCHER) and nobody.matched == "Megan" and not nobody.prefix


async def test_no_whole_word_fits_then_the_first_letters_do(world: World) -> None:
    nobody = await finder(world).resolve(caller(ADELE), "Meggan", purpose="issue")
    assert nobody == NoPerson((MEGAN,), "Meg", prefix=True)
    assert await finder(world).resolve(caller(ADELE), "Zed", purpose="issue") == NoPerson(())


async def test_more_than_ten_fit_offers_ten_and_says_there_are_more(world: World) -> None:
    for n in range(12):
        world.directory.add(DirectoryUser(f"e1000000-0000-0000-0000-0000000000{n:02d}", f"m{n}@c.test", f"Max {n}"))
    several = await finder(world).resolve(caller(ADELE), "Max", purpose="issue")
    assert isinstance(several, SeveralPeople) and several.more and len(several.candidates) == MAX_CHOICES
    assert world.directory.searches == ["Max"]  # one search, for one more than the card shows


async def test_a_non_operator_gets_the_typed_commands_refusal_before_any_search(world: World) -> None:
    people = finder(world)
    for purpose in ("issue", "revoke", "status"):
        with pytest.raises(Refused) as refused:
            await people.resolve(caller(MEGAN), "Lee", purpose=purpose)
        assert refused.value.rule is Rule.NOT_OPERATOR
        with pytest.raises(Refused):
            await people.suggest(caller(MEGAN), "Lee", purpose=purpose)
    with pytest.raises(Refused) as typed:
        await world.tap.issue(caller(MEGAN), PassRequest(LEE.user_principal_name))
    assert refused.value.user_message == typed.value.user_message
    assert world.directory.searches == []
    assert world.events(AuditOutcome.REFUSED).count("status:not_operator") == 1


async def test_a_manager_onboarding_finds_only_her_direct_reports(world: World) -> None:
    world.directory.add(LIDIA)
    world.directory.managers[LIDIA.object_id] = MEGAN.object_id
    people = finder(world)

    assert await people.resolve(caller(MEGAN), "Lee", purpose="onboard") == OnePerson(LEE)
    # Adele exists in the directory, but Megan only ever looks among her reports.
    nobody = await people.resolve(caller(MEGAN), "Adele", purpose="onboard")
    assert nobody == NoPerson((LEE, LIDIA), among_reports=True)
    assert world.directory.searches == []
    listed = await people.suggest(caller(MEGAN), "", purpose="onboard")
    assert [candidate.user for candidate in listed] == [LEE, LIDIA]
    assert all(candidate.refusal is None for candidate in listed)


async def test_someone_with_no_reports_is_refused_onboarding_by_name(world: World) -> None:
    with pytest.raises(Refused) as refused:
        await finder(world).resolve(caller(LEE), "Megan", purpose="onboard")
    assert refused.value.rule is Rule.NOT_MANAGER
    assert world.directory.searches == []
    assert "onboard:not_manager" in world.events(AuditOutcome.REFUSED)


async def test_suggestions_carry_the_single_commands_refusal(world: World) -> None:
    world.directory.add(MEGAN_FISCHER, PROTECTED)
    listed = await finder(world).suggest(caller(ADELE), "megan", purpose="issue")
    refusals = {candidate.user.display_name: candidate.refusal for candidate in listed}
    assert refusals["Megan Bowen"] is None
    assert "protected group" in (refusals["Megan Fischer"] or "")
    adele = await finder(world).suggest(caller(ADELE), "Adele", purpose="issue")
    assert adele[0].refusal is not None and "yourself" in adele[0].refusal


async def test_suggestions_stop_at_fifteen_and_check_a_few_at_a_time(world: World) -> None:
    for n in range(20):
        world.directory.add(DirectoryUser(f"e2000000-0000-0000-0000-0000000000{n:02d}", f"s{n}@c.test", f"Sam {n}"))
    running = 0
    peak = 0
    read = world.passes.current_pass

    async def slow_read(user_id: str) -> object:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1
        return await read(user_id)

    world.passes.current_pass = slow_read  # type: ignore[method-assign]
    listed = await finder(world, concurrency=3).suggest(caller(ADELE), "Sam", limit=50, purpose="issue")
    assert len(listed) == MAX_SUGGESTIONS
    assert peak == 3
