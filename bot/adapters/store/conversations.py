"""The 1:1 chat between the bot and each user, so private messages need not create it again."""

from __future__ import annotations

from datetime import datetime

from bot.adapters.store.schema import PersonalConversationRow
from bot.adapters.store.sessions import SqlDatabase
from bot.domain.records import PersonalConversation


class SqlPersonalConversations:
    def __init__(self, db: SqlDatabase) -> None:
        self._db = db

    async def save_personal_conversation(self, conversation: PersonalConversation, at: datetime) -> None:
        values = {**conversation.__dict__, "updated_at": at}
        async with self._db.session() as session:
            await session.execute(self._db.upsert(PersonalConversationRow, values))

    async def personal_conversation(self, user_id: str) -> PersonalConversation | None:
        async with self._db.session() as session:
            row = await session.get(PersonalConversationRow, user_id)
            if row is None:
                return None
            return PersonalConversation(row.user_id, row.tenant_id, row.service_url, row.conversation_id)
