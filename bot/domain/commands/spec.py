"""The shape of one row of the command table (table.py), and of one field of a command's form."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from bot.domain.commands.command import Command

if TYPE_CHECKING:
    from bot.domain.commands.parser import Line

MenuScope = Literal["personal", "team", "groupChat"]
MENU_SCOPES: tuple[MenuScope, ...] = ("personal", "team", "groupChat")
FieldKind = Literal["person", "lifetime", "toggle", "date", "time", "text"]


@dataclass(frozen=True)
class FieldSpec:
    """One input of a command's form. `name` is the key its value comes back under (see fields.py)."""

    name: str
    label: str
    kind: FieldKind
    required: bool = False
    placeholder: str = ""
    max_length: int | None = None


@dataclass(frozen=True)
class CommandSpec:
    """Everything about one command word: how it is typed, explained, offered in Teams' menu and parsed.

    `menu` gives the menu description per scope; a scope not listed does not offer the command.
    `produces` names the Command types `parse` can return, so a test can check each has a handler.
    """

    word: str
    usage: str
    summary: str
    example: str
    parse: Callable[[Line], Command]
    produces: tuple[type, ...]
    menu: tuple[tuple[MenuScope, str], ...]
    aliases: tuple[str, ...] = ()
    fields: tuple[FieldSpec, ...] = ()

    def menu_description(self, scope: MenuScope) -> str | None:
        return next((text for listed, text in self.menu if listed == scope), None)

    def field(self, name: str) -> FieldSpec | None:
        return next((spec for spec in self.fields if spec.name == name), None)


def everywhere(description: str) -> tuple[tuple[MenuScope, str], ...]:
    return tuple((scope, description) for scope in MENU_SCOPES)
