"""What Teams shows about tapbot: the descriptions on the app's details page and the bot's command menu.

Written for the IT admins who approve the app and the operators who use it. Teams limits (checked by the tests):
short description ≤ 80 characters, full ≤ 4000; ≤ 3 command lists, ≤ 10 commands each, a title ≤ 32 and a
description ≤ 128 characters.

The command menus come from the command table (bot/domain/commands/table.py), one row per command.
Command titles read `tap <command>` (no slash): picked from the menu in a channel Teams sends `@tapbot tap issue`,
which the bot's parser reads like `/tap issue`; in personal chat the prefix is optional anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.commands import COMMANDS, MENU_SCOPES, MenuScope

Scope = MenuScope
BOT_SCOPES: tuple[Scope, ...] = MENU_SCOPES

DEFAULT_SHORT_NAME = "tapbot"
FULL_NAME_SUFFIX = " – Temporary Access Passes"

SHORT_DESCRIPTION = "Issue and revoke Entra ID Temporary Access Passes, each delivered privately."

FULL_DESCRIPTION = """\
tapbot lets your IT staff issue, check and revoke Microsoft Entra ID Temporary Access Passes (TAPs) from Teams, \
and delivers every pass only to the person who asked for it: on a card in their private chat with the bot, never \
in a channel, a group chat, a log or a file.

Use it in a personal chat, or @mention it in a channel or group chat: the thread only ever reads "Sent to you \
privately" and the answer goes to the requester's 1:1 chat. If that chat cannot be reached, a freshly issued pass \
is revoked at once.

Who may do what:
• Operators (members of an Entra group you choose) issue, check and revoke passes and read the tenant's TAP policy.
• Managers request an onboarding pass for their own new hires; an operator can be required to approve it.
• Bulk: an operator attaches a CSV of users in the personal chat; results come back in one card or file.

Safeguards:
• Nobody issues a pass for themselves.
• No pass for guests, disabled accounts, holders of a directory role, members of protected groups \
(break-glass, service accounts) or users outside your TAP policy.
• Lifetimes and the one-time rule follow your tenant's TAP policy.
• A pass the user already holds is never replaced without an explicit confirmation.
• The pass card is redacted once it is handed over, expires, is revoked or replaced.
• Every issue, revoke, refusal and approval is written to an append-only audit log, never the pass itself.

tapbot runs in your own environment and calls Microsoft Graph with the app registration and permissions you grant \
it. Type "tap help" to see the commands."""


@dataclass(frozen=True)
class BotCommand:
    title: str
    description: str


def command_list(scope: Scope) -> tuple[BotCommand, ...]:
    """The command menu Teams shows in `scope`, from the command table (bot/domain/commands/table.py).

    Only a team offers `tap approvals here`: approval requests are posted to a channel; help says where bulk works.
    """
    return tuple(
        BotCommand(f"tap {spec.word}", description)
        for spec in COMMANDS
        if (description := spec.menu_description(scope)) is not None
    )
