"""The doctor's Graph checks: the credential and its token's permissions, then one harmless read per permission."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TypeVar

from azure.core.credentials_async import AsyncTokenCredential

from bot.adapters.clock import SystemClock
from bot.adapters.graph import GraphGateway, build_graph_client
from bot.doctor_credentials import TOKEN_TIMEOUT_SECONDS, token_roles
from bot.doctor_delegated import DelegatedChecks
from bot.doctor_report import _reason
from bot.domain.errors import GraphRejected, GraphUnavailable, TapError
from bot.domain.model import ALL_USERS, TapPolicy
from bot.settings import GraphMode, Settings

logger = logging.getLogger("bot.doctor")  # the logger name the doctor always used

T = TypeVar("T")

# Application permissions, least privileged first (docs/deployment.md, graph-tap.md).
# Creating and deleting passes: the TAP-only permission (Microsoft's lesser-privileged alternative to the
# all-methods one, per "What's new in Microsoft Graph", October 2025; the delete page lists it), or the broader one.
WRITE_PERMISSION = "UserAuthMethod-TAP.ReadWrite.All"
BROAD_WRITE_PERMISSION = "UserAuthenticationMethod.ReadWrite.All"
WRITE_PERMISSIONS = (WRITE_PERMISSION, BROAD_WRITE_PERMISSION)
USERS_PERMISSION = "User.Read.All"
MEMBERSHIP_PERMISSION = "GroupMember.Read.All"
# roleAssignments and roleEligibilityScheduleInstances: the latter alone would do with
# RoleEligibilitySchedule.Read.Directory, but RoleManagement.Read.Directory, needed for the former, covers both.
ROLES_PERMISSION = "RoleManagement.Read.Directory"
PIM_GROUPS_PERMISSION = "PrivilegedEligibilitySchedule.Read.AzureADGroup"
POLICY_PERMISSION = "Policy.Read.AuthenticationMethod"
PASS_READ_PERMISSION = "UserAuthMethod-TAP.Read.All"
# Listing all of a user's sign-in methods (the new-hire rule of onboarding) is not covered by User.Read.All nor by
# the TAP-only permissions: the "List methods" page names this one as least privileged for applications.
METHODS_PERMISSION = "UserAuthenticationMethod.Read.All"
REQUIRED_PERMISSIONS = (
    WRITE_PERMISSION,
    PASS_READ_PERMISSION,
    METHODS_PERMISSION,
    POLICY_PERMISSION,
    USERS_PERMISSION,
    MEMBERSHIP_PERMISSION,
    ROLES_PERMISSION,
    PIM_GROUPS_PERMISSION,
)
# Permissions that include a narrower one (an app holding the wider one needs nothing more for those reads).
IMPLIED_BY = {
    WRITE_PERMISSION: (BROAD_WRITE_PERMISSION,),
    PASS_READ_PERMISSION: (WRITE_PERMISSION, BROAD_WRITE_PERMISSION, "UserAuthenticationMethod.Read.All"),
    METHODS_PERMISSION: (BROAD_WRITE_PERMISSION,),
    MEMBERSHIP_PERMISSION: ("Group.Read.All", "Directory.Read.All"),
    USERS_PERMISSION: ("Directory.Read.All",),
    ROLES_PERMISSION: ("RoleManagement.ReadWrite.Directory", "RoleManagement.Read.All"),
    PIM_GROUPS_PERMISSION: ("PrivilegedEligibilitySchedule.ReadWrite.AzureADGroup",),
}

CredentialFactory = Callable[[Settings], AsyncTokenCredential]


class GraphChecks(DelegatedChecks):
    """Doctor's Graph checks (`credential_factory` is the Doctor's field)."""

    credential_factory: CredentialFactory

    def _credential(self, settings: Settings) -> AsyncTokenCredential | None:
        """The deployment's Graph credential (None in the sandbox, or when it cannot be built: reported then)."""
        if settings.graph.mode in (GraphMode.SANDBOX, GraphMode.ANONYMOUS):
            return None
        try:
            return self.credential_factory(settings)
        except Exception as error:
            self._fail(
                "graph_token", f"The Graph credential ({settings.graph.mode.value}) cannot be built: {_reason(error)}."
            )
            return None

    async def _graph_token(self, settings: Settings, credential: AsyncTokenCredential | None) -> bool:
        """Whether Graph calls can carry a token (always, in the sandbox); reports the permissions it grants."""
        mode = settings.graph.mode
        if mode in (GraphMode.SANDBOX, GraphMode.ANONYMOUS):
            where = "the built-in sandbox tenant" if mode is GraphMode.SANDBOX else "a stand-alone sandbox"
            self._not_applicable("graph_token", f"Graph credential: not applicable ({where} needs no sign-in).")
            if settings.delegated_writes and mode is GraphMode.SANDBOX:
                await self._sandbox_no_standing_write(settings)
                return True
            self._not_applicable(
                "graph_write",
                f"Permission to create and delete passes ({WRITE_PERMISSION} or {BROAD_WRITE_PERMISSION}): "
                "not applicable.",
            )
            return True
        if credential is None:
            return False  # its ✗ line is written
        try:
            token = await asyncio.wait_for(credential.get_token(settings.graph.scope), TOKEN_TIMEOUT_SECONDS)
        except Exception as error:
            logger.debug("graph token failed", exc_info=True)
            self._fail(
                "graph_token",
                f"The Graph credential ({mode.value}) obtains no token for {settings.graph.scope}: {_reason(error)}.",
            )
            return False
        roles = token_roles(token.token)
        minutes = max(0, round((token.expires_on - datetime.now(UTC).timestamp()) / 60))
        granted = ", ".join(sorted(roles)) if roles else "no application permissions"
        self._ok(
            "graph_token",
            f"The Graph credential ({mode.value}) obtains a token for {settings.graph.scope} "
            f"(valid {minutes} more minutes; it grants: {granted}).",
        )
        if settings.delegated_writes:
            self._no_standing_write(roles)
        elif WRITE_PERMISSION in roles:
            self._ok(
                "graph_write",
                f"The token grants {WRITE_PERMISSION}: the bot can create and delete passes (least privilege).",
            )
        elif BROAD_WRITE_PERMISSION in roles:
            self._ok(
                "graph_write",
                f"The token grants {BROAD_WRITE_PERMISSION}: the bot can create and delete passes. It also lets the "
                f"app change every other sign-in method; {WRITE_PERMISSION} is enough.",
            )
        else:
            self._fail(
                "graph_write",
                f"The token grants neither {WRITE_PERMISSION} nor {BROAD_WRITE_PERMISSION}: the bot cannot create or "
                f"delete passes. Grant {WRITE_PERMISSION} as an application permission and give admin consent.",
            )
        return True

    async def _graph(self, settings: Settings, token_ok: bool, credential: AsyncTokenCredential | None) -> None:
        if not token_ok:  # no call can succeed without a token
            for check in _TITLES:
                self._not_applicable(check, f"{_TITLES[check]}: not checked (no Graph token).")
            return
        sandbox = None
        base_url = settings.graph.base_url
        if settings.sandbox:
            from bot.sandbox.server import start_sandbox  # a real deployment never loads the emulator
            from bot.sandbox.tenant import load_tenant

            assert settings.sandbox_tenant_file is not None
            sandbox = await start_sandbox(await asyncio.to_thread(load_tenant, settings.sandbox_tenant_file))
            base_url = sandbox.base_url
        client, http_client = build_graph_client(settings.graph, base_url, credential=credential)
        try:
            await self._graph_reads(settings, GraphGateway(client, SystemClock()))
        finally:
            await http_client.aclose()
            if sandbox is not None:
                await sandbox.close()

    async def _graph_reads(self, settings: Settings, graph: GraphGateway) -> None:
        limit = settings.graph.timeout_seconds + 5
        found_user = await self._read("graph_users", USERS_PERMISSION, graph.any_user_id(), limit)
        user_id = found_user if isinstance(found_user, str) else None
        if user_id is not None:
            self._ok("graph_users", f"Users can be read ({USERS_PERMISSION}).")
        elif found_user is None:
            self._fail("graph_users", "Listing users answered no user at all: is this the right tenant?")
        if user_id is None:
            for check in ("graph_membership", *_ROLE_CHECKS):
                self._not_applicable(check, f"{_TITLES[check]}: not checked (no user to check with).")
        else:
            groups = [settings.operator_group_id]
            if _answered(
                await self._read("graph_membership", MEMBERSHIP_PERMISSION, graph.member_groups(user_id, groups), limit)
            ):
                self._ok(
                    "graph_membership",
                    f"Group membership can be checked, nested groups included ({MEMBERSHIP_PERMISSION}).",
                )
            await self._role_reads(graph, user_id, limit)
        policy = await self._read("graph_policy", POLICY_PERMISSION, graph.tap_policy(), limit)
        if isinstance(policy, TapPolicy):
            self._ok("graph_policy", f"The Temporary Access Pass policy can be read ({POLICY_PERMISSION}).")
            self._policy(policy)
        else:
            self._not_applicable("tap_policy", f"{_TITLES['tap_policy']}: unknown (the policy cannot be read).")
        if user_id is None:
            self._not_applicable("graph_passes", f"{_TITLES['graph_passes']}: not checked (no user to check with).")
        elif _answered(await self._read("graph_passes", PASS_READ_PERMISSION, graph.current_pass(user_id), limit)):
            self._ok("graph_passes", f"Users' Temporary Access Passes can be listed ({PASS_READ_PERMISSION}).")
        if user_id is None:
            self._not_applicable("graph_methods", f"{_TITLES['graph_methods']}: not checked (no user to check with).")
        elif _answered(await self._read("graph_methods", METHODS_PERMISSION, graph.sign_in_methods(user_id), limit)):
            self._ok("graph_methods", f"A new hire's sign-in methods can be listed ({METHODS_PERMISSION}).")
        await self._groups(settings, graph, limit)

    async def _role_reads(self, graph: GraphGateway, user_id: str, limit: float) -> None:
        """Each read behind "holds no directory role by any path", so a refusal names the permission it lacks."""
        reads: list[tuple[str, str, Awaitable[object], str]] = [
            (
                "graph_roles",
                ROLES_PERMISSION,
                graph.active_role_grants([user_id]),
                f"Directory role assignments can be read ({ROLES_PERMISSION}).",
            ),
            (
                "graph_role_eligibility",
                ROLES_PERMISSION,
                graph.eligible_role_grants(user_id),
                f"Roles eligible in PIM can be read ({ROLES_PERMISSION}).",
            ),
            (
                "graph_role_groups",
                MEMBERSHIP_PERMISSION,
                graph.role_assignable_groups(user_id),
                f"A user's role-assignable groups can be listed ({MEMBERSHIP_PERMISSION}).",
            ),
            (
                "graph_pim_groups",
                PIM_GROUPS_PERMISSION,
                graph.group_eligibilities(user_id),
                f"Group memberships eligible in PIM for Groups can be read ({PIM_GROUPS_PERMISSION}).",
            ),
        ]
        for check, permission, work, sentence in reads:
            if _answered(await self._read(check, permission, work, limit)):
                self._ok(check, sentence)

    def _policy(self, policy: TapPolicy) -> None:
        if not policy.enabled:
            self._fail(
                "tap_policy",
                "The tenant's Temporary Access Pass policy is disabled: no pass can be issued. Enable it in the "
                "Entra admin center (Protection → Authentication methods → Policies → Temporary Access Pass).",
            )
            return
        everyone = any(target.target_id == ALL_USERS for target in policy.include_targets)
        scope = "all users" if everyone else f"{len(policy.include_targets)} target(s)"
        if policy.exclude_targets:
            scope += f" except {len(policy.exclude_targets)} excluded target(s)"
        self._ok(
            "tap_policy",
            f"The Temporary Access Pass policy is enabled: lifetimes {policy.minimum_lifetime_minutes}–"
            f"{policy.maximum_lifetime_minutes} minutes (default {policy.default_lifetime_minutes}), one-time use "
            f"{'forced' if policy.one_time_forced else 'optional'}, for {scope}.",
        )

    async def _groups(self, settings: Settings, graph: GraphGateway, limit: float) -> None:
        operator = await self._read(
            "operator_group", MEMBERSHIP_PERMISSION, _found(graph, settings.operator_group_id), limit
        )
        if operator is _MISSING:
            self._fail(
                "operator_group",
                f"The operator group {settings.operator_group_id} does not exist in the tenant "
                "(TAPBOT_OPERATOR_GROUP_ID): nobody could issue a pass.",
            )
        elif isinstance(operator, str):
            self._ok("operator_group", f"The operator group exists: {operator} ({settings.operator_group_id}).")
        if not settings.protected_group_ids:
            self._not_applicable(
                "protected_groups",
                "No protected groups are configured (TAPBOT_PROTECTED_GROUP_IDS): break-glass and service accounts "
                "are refused only if they hold a directory role.",
            )
            return
        names: list[str] = []
        missing: list[str] = []
        for group_id in sorted(settings.protected_group_ids):
            found = await self._read("protected_groups", MEMBERSHIP_PERMISSION, _found(graph, group_id), limit)
            if isinstance(found, _Failed):
                return
            if found is _MISSING:
                missing.append(group_id)
            else:
                names.append(f"{found}")
        if missing:
            self._fail(
                "protected_groups",
                f"Protected group(s) {', '.join(missing)} do not exist in the tenant (TAPBOT_PROTECTED_GROUP_IDS): "
                "their members would not be protected.",
            )
        else:
            self._ok("protected_groups", f"The protected groups exist: {', '.join(names)}.")

    async def _read(self, check: str, permission: str, work: Awaitable[T], limit: float) -> T | _Failed:
        """Runs one read; a failure becomes a ✗ line naming the permission behind it."""
        try:
            return await asyncio.wait_for(work, limit)
        except GraphRejected as error:
            reference = f" (request id {error.request_id})" if error.request_id else ""
            self._fail(
                check,
                f"{_TITLES[check]}: Microsoft Graph refused{reference}. Grant the application permission "
                f"{permission} and give admin consent.",
            )
        except (GraphUnavailable, TimeoutError) as error:
            why = error.user_message if isinstance(error, TapError) else f"no answer within {limit:g} s"
            self._fail(check, f"{_TITLES[check]}: Microsoft Graph did not answer ({why}).")
        except TapError as error:
            self._fail(check, f"{_TITLES[check]}: {error.user_message}")
        except Exception as error:  # e.g. the credential failing inside the call
            logger.debug("%s failed", check, exc_info=True)
            self._fail(check, f"{_TITLES[check]}: failed ({_reason(error)}).")
        return _FAILED


_TITLES = {
    "graph_users": f"Reading users ({USERS_PERMISSION})",
    "graph_membership": f"Checking group membership ({MEMBERSHIP_PERMISSION})",
    "graph_roles": f"Reading directory role assignments ({ROLES_PERMISSION})",
    "graph_role_eligibility": f"Reading roles eligible in PIM ({ROLES_PERMISSION})",
    "graph_role_groups": f"Listing a user's role-assignable groups ({MEMBERSHIP_PERMISSION})",
    "graph_pim_groups": f"Reading group memberships eligible in PIM for Groups ({PIM_GROUPS_PERMISSION})",
    "graph_policy": f"Reading the Temporary Access Pass policy ({POLICY_PERMISSION})",
    "tap_policy": "Temporary Access Pass policy",
    "graph_passes": f"Listing a user's Temporary Access Passes ({PASS_READ_PERMISSION})",
    "graph_methods": f"Listing a user's sign-in methods ({METHODS_PERMISSION})",
    "operator_group": f"Reading the operator group ({MEMBERSHIP_PERMISSION})",
    "protected_groups": f"Reading the protected groups ({MEMBERSHIP_PERMISSION})",
}


_ROLE_CHECKS = ("graph_roles", "graph_role_eligibility", "graph_role_groups", "graph_pim_groups")


class _Failed:
    """A read that failed; its ✗ line is already written."""


class _Missing:
    """A group the tenant does not have."""


_FAILED = _Failed()
_MISSING = _Missing()


def _answered(result: object) -> bool:
    """Whether a read answered at all, whatever it answered (an empty answer still proves the permission)."""
    return not isinstance(result, _Failed)


async def _found(graph: GraphGateway, group_id: str) -> str | _Missing:
    name = await graph.find_group(group_id)
    return _MISSING if name is None else name
