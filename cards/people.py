"""Cards and sentences about finding a person by name: the "Which Megan?" choice, its settled form, the answer
when nobody fits, and the line that tells two people with one name apart."""

from __future__ import annotations

from collections.abc import Sequence

from microsoft_teams.cards.core import ActionSet, CardElement, Container, ExecuteAction, TextBlock

from bot.domain.model import DirectoryUser
from bot.domain.people import NoPerson
from cards import verbs
from cards.buttons import ChoosePersonButton
from cards.passes import CardJson, heading, render, sentence, work_line

MAX_TYPED = 60  # how much of what was typed a heading or sentence repeats


def shown(typed: str) -> str:
    text = " ".join(typed.split())
    return text if len(text) <= MAX_TYPED else text[: MAX_TYPED - 1] + "…"


def person_line(user: DirectoryUser) -> str:
    """'Megan Bowen (MeganB@contoso.com) · Marketing · Marketing Manager': the person as the bot understood them."""
    work = work_line(user)
    return f"{user.label} · {work}" if work else user.label


def people_choice_card(
    typed: str, candidates: Sequence[DirectoryUser], commands: Sequence[str], *, more: bool, offered_to: str
) -> CardJson:
    """One button per candidate; each carries the command as if typed with that person's object id."""
    body: list[CardElement] = [
        heading(f"Which {shown(typed)}?"),
        sentence(f"Several people fit '{shown(typed)}'. Choose one and the command goes on for that person."),
    ]
    for user, command in zip(candidates, commands, strict=True):
        button = ChoosePersonButton(command=command, label=person_line(user), offered_to=offered_to)
        details: list[CardElement] = [
            TextBlock(text=user.display_name or user.user_principal_name, weight="Bolder", wrap=True),
            TextBlock(text=user.user_principal_name, is_subtle=True, wrap=True, spacing="None"),
        ]
        work = work_line(user)
        if work:
            details.append(TextBlock(text=work, is_subtle=True, wrap=True, spacing="None"))
        title = f"Choose {user.display_name or user.user_principal_name}"
        details.append(ActionSet(actions=[ExecuteAction(title=title, verb=verbs.CHOOSE_PERSON, data=button.data())]))
        body.append(Container(items=details, separator=True))
    if more:
        body.append(sentence(narrow_it_down(typed), color="Warning"))
    return render(*body)


def narrow_it_down(typed: str) -> str:
    return (
        f"More people fit '{shown(typed)}' than I can list here. Narrow it down: add the last name, or type the "
        "user principal name (name@domain)."
    )


def chosen_card(label: str) -> CardJson:
    """The choice card once a candidate was pressed, so it is not pressed twice by mistake."""
    return render(heading(f"Chose {label}"), sentence("The command went on for this person.", subtle=True))


def no_person_sentence(typed: str, result: NoPerson) -> str:
    """Nobody fits: say so, with the closest people and what they were found with."""
    where = "None of your direct reports is" if result.among_reports else "Nobody in the directory is"
    opening = f"{where} called '{shown(typed)}'."
    if not result.suggestions:
        return f"{opening} Check the spelling, or type the user principal name (name@domain)."
    names = "; ".join(person_line(user) for user in result.suggestions)
    if not result.matched:
        return f"{opening} Your direct reports: {names}. Type the command again with one of them."
    how = "starts with" if result.prefix else "has the word"
    return (
        f"{opening} Closest, searching for a name that {how} '{shown(result.matched)}': {names}. "
        "Type the command again with one of them."
    )
