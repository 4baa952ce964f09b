"""The Agents Playground's web UI, driven the way a person uses it: click a chat, type, press send, click a button.

Only imported once the browser tests know Playwright and Chromium are there (``conftest.py``), so a machine
without them skips (locally) instead of failing at collection.

Selectors are the ones a person would name: the chat list entries (``treeitem`` "Personal Chat",
"IT Operations", "<team> - <channel>"), the compose box (the page's ``role=textbox``), "Send Message", "Post", the
@mention picker's menu items and the card buttons by their titles. Adaptive Cards are rendered by Adaptive Cards JS
(``.ac-adaptiveCard``). Every wait is on something the page shows; nothing sleeps.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

from playwright.async_api import BrowserContext, Locator, Page, expect

from tests.browser.card_catalogue import MAX_CARD_BYTES_UTF16, CardJson, kinds_of, utf16_size
from tests.browser.environment import LOCALE, TIMEZONE
from tests.support.playground import Playground

TIMEOUT_MS = 10_000
"""How long any single wait on the page may take (Playwright's default is 30 s)."""
INVOKE_PATH = "/_conversation/v1/invoke"
FILE_DOWNLOAD = "application/vnd.microsoft.teams.file.download.info"
OUTSIDE_CHAT_LIST = "xpath=//*[not(ancestor-or-self::*[@role='tree'])]"


OpenTeams = Callable[[Mapping[str, Any]], Awaitable["TeamsUI"]]
"""``ui = await open_teams(config)``: the ``open_teams`` fixture of ``conftest.py``."""


class TeamsUI:
    """One browser page on one running Playground, acting as the Playground's current user."""

    def __init__(
        self, context: BrowserContext, page: Page, pg: Playground, screenshots: Path, prefix: str, shots: Iterator[int]
    ) -> None:
        self.context = context
        self.page = page
        self.pg = pg
        self.screenshots = screenshots
        self.prefix = prefix
        self.who = str(pg.current_user["givenName"]).lower()
        self.invoke_cards: list[CardJson] = []
        """Cards the bot answered a button click with (the page renders them from the HTTP answer: the
        Playground sends no WebSocket event for them)."""
        self.saved: list[Path] = []
        self._shots = shots

    # --- opening and navigating ----------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the Playground, wait until the personal chat is ready, and hide the developer log panel
        (Teams has none; hidden, page text appears once)."""
        await self.page.goto(self.pg.base_url)
        await expect(self.page.get_by_role("treeitem", name="Personal Chat")).to_be_visible()
        await expect(self.composer).to_be_visible()
        hide_log = self.page.get_by_title("Hide log panel")
        await hide_log.click()
        await expect(hide_log).to_be_hidden()
        # Opening a chat the first time installs the app there: the bot's welcome arrives.
        await self.see("Hi, I'm tapbot")

    async def open_chat(self, name: str) -> None:
        """A chat in the chat list: "Personal Chat" or the group chat's name."""
        await self.page.get_by_role("treeitem", name=name, exact=True).click()
        await expect(self.composer).to_be_visible()

    async def open_channel(self, team: str, channel: str) -> None:
        await self.page.get_by_role("treeitem", name=f"{team} - {channel}", exact=True).click()
        await expect(self.page.get_by_role("button", name="Post", exact=True)).to_be_visible()

    # --- typing ------------------------------------------------------------------------------------------

    @property
    def composer(self) -> Locator:
        """The chat's compose box; in a channel, the "Start a new post" box at the top (the first textbox)."""
        return self.page.get_by_role("textbox").first

    async def _type(self, text: str, *, mention: str | None) -> None:
        box = self.composer
        await box.click()
        if mention is not None:
            # The @ picker: type "@" and the start of the name, then pick the bot from the menu.
            await self.page.keyboard.type("@" + mention[:3])
            # An entry's accessible name is "<name> <name>" (avatar label + text): match its text instead.
            entry = self.page.get_by_role("menuitem").filter(has_text=re.compile(rf"^{re.escape(mention)}$"))
            await entry.click()
            await expect(box.locator("span.mention")).to_have_text(mention)
            await self.page.keyboard.insert_text(" " + text)
            await expect(box).to_have_text(f"{mention} {text}")
        else:
            await self.page.keyboard.insert_text(text)
            await expect(box).to_have_text(text)

    async def send(self, text: str, *, mention: str | None = None) -> None:
        """Type into the chat's compose box (optionally @mentioning ``mention`` through the picker) and press
        the send button; returns once the message shows in the chat."""
        await self._type(text, mention=mention)
        await self.page.get_by_role("button", name="Send Message").click()
        await expect(self.composer).to_have_text("")
        await expect(self.shown(text).last).to_be_visible()

    async def post(self, text: str, *, mention: str | None = None) -> None:
        """Start a new post in the open channel (optionally @mentioning through the picker) and press Post."""
        await self._type(text, mention=mention)
        await self.page.get_by_role("button", name="Post", exact=True).click()
        await expect(self.composer).to_have_text("")
        await expect(self.shown(text).last).to_be_visible()

    async def attach_file(self, name: str, download_url: str, text: str = "") -> None:
        """Send a message with a file, as Teams does when a file from OneDrive/SharePoint is attached.

        The Playground has no file picker: a person uses "Mock an Activity" > "Custom activity" and pastes the
        activity into its editor (a Monaco editor: typing would auto-indent and auto-close brackets; pasting
        does not). The activity is the Playground's own template for this chat plus what a real Teams message
        carries (``from.name``, ``locale``, ``channelData.tenant``, the ``clientInfo`` time zone)."""
        pg = self.pg
        activity = dict(await pg.custom_activity_template(pg.personal_chat_id))
        activity.update(
            type="message",
            text=text,
            locale=LOCALE,
            channelData={"tenant": {"id": pg.tenant_id}},
            entities=[
                {"type": "clientInfo", "locale": LOCALE, "country": "US", "platform": "Web", "timezone": TIMEZONE}
            ],
            attachments=[
                {
                    "contentType": FILE_DOWNLOAD,
                    "name": name,
                    "contentUrl": f"https://contoso.sharepoint.com/personal/Documents/{name}",
                    "content": {"downloadUrl": download_url, "uniqueId": "1", "fileType": name.rsplit(".", 1)[-1]},
                }
            ],
        )
        activity["from"] = {**activity.get("from", {}), "name": pg.current_user["name"]}
        await self.page.get_by_role("button", name="Mock an Activity").click()
        await self.page.get_by_role("menuitem", name="Custom activity").click()
        dialog = self.page.get_by_role("dialog")
        await dialog.locator(".monaco-editor .view-lines").click()
        await self.page.keyboard.press("ControlOrMeta+A")
        await self.page.keyboard.press("Delete")
        await self.page.evaluate("text => navigator.clipboard.writeText(text)", json.dumps(activity, indent=2))
        await self.page.keyboard.press("ControlOrMeta+V")
        await expect(dialog.locator(".monaco-editor .view-lines")).to_contain_text(FILE_DOWNLOAD)
        await dialog.get_by_role("button", name="Send activity").click()
        await expect(dialog).to_be_hidden()  # also lets its fade-out finish before any screenshot

    # --- reading ---------------------------------------------------------------------------------------------

    def shown(self, text: str) -> Locator:
        """Elements of the open conversation (messages, card text) showing ``text``. Plain ``get_by_text``
        also finds the chat list's preview of each chat's last message."""
        return self.page.get_by_text(text).and_(self.page.locator(OUTSIDE_CHAT_LIST))

    async def see(self, text: str) -> Locator:
        """The newest element of the open conversation showing ``text``, once visible."""
        found = self.shown(text).last
        await expect(found).to_be_visible()
        return found

    def cards(self) -> Locator:
        return self.page.locator(".ac-adaptiveCard")

    async def card(self, text: str | re.Pattern[str]) -> Locator:
        """The newest rendered card containing ``text``, once visible."""
        found = self.cards().filter(has_text=text).last
        await expect(found).to_be_visible()
        return found

    async def newest_pass_card(self) -> Locator:
        found = self.cards().filter(has=self.page.locator("#passValue")).last
        await expect(found).to_be_visible()
        return found

    async def click_card_button(self, card: Locator, title: str) -> dict[str, Any]:
        """Press a card's Action.Execute button; returns the Playground's answer ``{"type", "value"}``."""
        async with self.page.expect_response(lambda r: r.url.endswith(INVOKE_PATH)) as answer_info:
            await card.get_by_role("button", name=title, exact=True).click()
        answer = await answer_info.value
        assert answer.ok, f"{title}: HTTP {answer.status} {await answer.text()}"
        body: dict[str, Any] = await answer.json()
        value = body.get("value")
        if isinstance(value, dict) and value.get("type") == "AdaptiveCard":
            self.invoke_cards.append(value)
        return body

    @staticmethod
    async def facts(card: Locator) -> dict[str, str]:
        """A rendered card's FactSet rows as a person reads them: title -> value."""
        titles = [t.strip() for t in await card.locator(".ac-fact-title").all_inner_texts()]
        values = [v.strip() for v in await card.locator(".ac-fact-value").all_inner_texts()]
        assert len(titles) == len(values), (titles, values)
        return dict(zip(titles, values, strict=True))

    # --- evidence ----------------------------------------------------------------------------------------------

    async def screenshot(self, name: str, *, show: Locator | None = None) -> Path:
        """Save what the person sees (the viewport) as ``<test>-<nn>-<typist>-<name>.png``, scrolled to ``show``
        (``nn`` counts the test's screenshots across all its browsers)."""
        if show is not None:
            # Taller than the chat pane (a page of 50 passes): show its top, not wherever "if needed" stops.
            await show.evaluate(
                "e => e.getBoundingClientRect().height > window.innerHeight - 160"
                " ? e.scrollIntoView({block: 'start'}) : e.scrollIntoView({block: 'nearest'})"
            )
        await self.page.evaluate("document.activeElement?.blur()")  # no focus ring on the compose box
        path = self.screenshots / f"{self.prefix}-{next(self._shots):02d}-{self.who}-{name}.png"
        await self.page.screenshot(path=path, animations="disabled", caret="hide")
        self.saved.append(path)
        return path

    def cards_shown(self) -> list[CardJson]:
        """Every card the page was given: bot messages in the current user's chats (the conversation
        WebSocket, which the page also listens to) and answers to button clicks."""
        from_messages = [m.card for m in self.pg.messages if m.card is not None and m.conversation_type != "unknown"]
        return [*from_messages, *self.invoke_cards]

    def kinds_shown(self) -> set[str]:
        return set().union(*(kinds_of(card) for card in self.cards_shown()))

    def check_card_sizes(self) -> int:
        """Every card shown stays below the size limit; returns the largest size (UTF-16 bytes)."""
        shown = self.cards_shown()
        assert shown, "no card was shown"
        sizes = [utf16_size(card) for card in shown]
        record = sorted(
            ({"kinds": sorted(kinds_of(card)), "utf16_bytes": size} for card, size in zip(shown, sizes, strict=True)),
            key=lambda item: -int(item["utf16_bytes"]),
        )
        sizes_file = self.screenshots / f"{self.prefix}-{self.who}-card-sizes.json"
        sizes_file.write_text(json.dumps(record, indent=1), encoding="utf-8")
        too_big = [item for item in record if int(item["utf16_bytes"]) >= MAX_CARD_BYTES_UTF16]
        assert not too_big, f"cards of {MAX_CARD_BYTES_UTF16} UTF-16 bytes or more: {too_big}"
        return max(sizes)
