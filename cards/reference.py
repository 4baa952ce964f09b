"""Cards that explain: the tenant's pass policy and the command help (from the command table)."""

from __future__ import annotations

from microsoft_teams.cards.core import CardElement

from bot.domain.commands import COMMANDS, EXAMPLE_ISSUE_BY_NAME, EXAMPLES
from bot.domain.model import ALL_USERS, TapPolicy, TargetType
from cards.formatting import format_minutes
from cards.passes import CardJson, facts, heading, render, sentence


def policy_card(policy: TapPolicy, *, group_names: dict[str, str] | None = None) -> CardJson:
    return render(
        heading("Temporary Access Pass policy"),
        facts(
            ("State", "Enabled" if policy.enabled else "Disabled"),
            ("Default lifetime", format_minutes(policy.default_lifetime_minutes)),
            (
                "Allowed lifetime",
                f"{format_minutes(policy.minimum_lifetime_minutes)} to "
                f"{format_minutes(policy.maximum_lifetime_minutes)}",
            ),
            ("One-time use", "Always (forced by policy)" if policy.one_time_forced else "Optional"),
            ("Pass length", f"{policy.default_length} characters"),
            ("Applies to", _targets(policy.include_targets, everyone="All users", names=group_names or {})),
            ("Excluded", _targets(policy.exclude_targets, everyone="All users", names=group_names or {}) or "Nobody"),
        ),
        sentence("The policy is managed in the Entra admin center; the bot only reads it.", subtle=True),
    )


def _targets(targets: tuple, *, everyone: str, names: dict[str, str]) -> str:
    shown = []
    for target in targets:
        if target.target_id == ALL_USERS:
            shown.append(everyone)
        elif target.target_id in names:
            shown.append(f"group {names[target.target_id]}")
        else:
            kind = "group" if target.target_type is TargetType.GROUP else "user"
            shown.append(f"{kind} {target.target_id}")
    return ", ".join(shown)


HELP_LINES = tuple((spec.usage, spec.summary) for spec in COMMANDS)


def help_card(*, unknown_word: str | None = None) -> CardJson:
    body: list[CardElement] = [heading("tapbot: Temporary Access Passes, privately")]
    if unknown_word:
        body.append(
            sentence(
                f"I don't know the command '{unknown_word[:60]}'. These are the ones I know:",
                color="Attention",
            )
        )
    body.append(facts(*HELP_LINES))
    body.append(
        sentence(
            "A user is a name, a user principal name (name@domain) or an object id. Passes are only ever sent to you "
            "in your personal chat with me; in a channel or group chat, @mention me and I answer there that "
            "the card went to you privately.",
            subtle=True,
        )
    )
    body.append(sentence(f"Examples: {EXAMPLES['issue']} · {EXAMPLE_ISSUE_BY_NAME}", subtle=True))
    return render(*body)
