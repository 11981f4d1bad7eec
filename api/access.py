"""The access policy (api/access.yaml): permissions, what each role grants, and what each route needs.

Every error names the file and line, as for mappings and routes. `check_coverage` compares the policy with
the routes an app serves: a served route without an entry, or an entry naming no served route, is a
ConfigError, so a new endpoint cannot go live unguarded and a stale entry cannot linger.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mappings.yamlfile import Diagnostics, is_list, is_map, item_line, key_line, read_yaml, unknown_keys

DEFAULT_POLICY_PATH = Path(__file__).with_name("access.yaml")
PUBLIC = "public"
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
_ROUTE_KEY = re.compile(r"^(?P<method>[A-Z]+) (?P<path>/\S*)$")
_NAME = re.compile(r"^[a-z][a-z0-9_-]*(:[a-z][a-z0-9_-]*)?$")

RouteKey = tuple[str, str]  # (METHOD, path template)


@dataclass(frozen=True)
class AccessPolicy:
    """Role grants and the permission each (METHOD, path template) needs; None means public."""

    permissions: Mapping[str, str]
    roles: Mapping[str, frozenset[str]]
    routes: Mapping[RouteKey, str | None]
    source: str = "api/access.yaml"

    def permissions_of(self, roles: Iterable[str], scopes: Iterable[str]) -> frozenset[str]:
        """What roles grant, plus extra scopes that name a known permission (others grant nothing)."""
        granted: set[str] = set()
        for role in roles:
            granted |= self.roles.get(role, frozenset())
        granted |= {scope for scope in scopes if scope in self.permissions}
        return frozenset(granted)

    def roles_granting(self, permission: str) -> list[str]:
        """The roles that grant a permission, in the policy's order."""
        return [role for role, granted in self.roles.items() if permission in granted]


def load_access_policy(path: Path = DEFAULT_POLICY_PATH) -> AccessPolicy:
    """Read and check a policy file; raises ConfigError listing every problem with its line."""
    diag = Diagnostics(path.parent.parent)
    file = diag.display(path)
    document = read_yaml(path, file, diag)
    if document is None:
        diag.raise_if_any()
    if not is_map(document):
        diag.error("the policy must be a map with permissions, roles and routes", file, 1)
        diag.raise_if_any()
    for key, line in unknown_keys(document, ("permissions", "roles", "routes")):
        diag.error(f"unknown key {key!r}; expected permissions, roles, routes", file, line)
    permissions = _permissions(document, file, diag)
    roles = _roles(document, permissions, file, diag)
    routes = _routes(document, permissions, file, diag)
    diag.raise_if_any()
    return AccessPolicy(permissions=permissions, roles=roles, routes=routes, source=file)


def _section(document: Any, name: str, file: str, diag: Diagnostics) -> Any:
    if name not in document:
        diag.error(f"the {name} section is missing", file, 1)
        return None
    section = document[name]
    if not is_map(section):
        diag.error(f"{name} must be a map", file, key_line(document, name))
        return None
    return section


def _permissions(document: Any, file: str, diag: Diagnostics) -> dict[str, str]:
    section = _section(document, "permissions", file, diag)
    found: dict[str, str] = {}
    for name, meaning in (section or {}).items():
        if not isinstance(name, str) or not _NAME.match(name) or name == PUBLIC:
            diag.error(
                f"{name!r} is not a permission name like resources:read", file, key_line(section, name)
            )
        elif not isinstance(meaning, str) or not meaning.strip():
            diag.error(f"permission {name} needs a description", file, key_line(section, name))
        else:
            found[name] = meaning
    return found


def _roles(
    document: Any, permissions: Mapping[str, str], file: str, diag: Diagnostics
) -> dict[str, frozenset[str]]:
    section = _section(document, "roles", file, diag)
    found: dict[str, frozenset[str]] = {}
    for role, granted in (section or {}).items():
        line = key_line(section, role)
        if not isinstance(role, str) or not _NAME.match(role):
            diag.error(f"{role!r} is not a role name", file, line)
            continue
        if not is_list(granted):
            diag.error(f"role {role} must list the permissions it grants", file, line)
            continue
        for index, permission in enumerate(granted):
            if permission not in permissions:
                diag.error(
                    f"role {role} grants unknown permission {permission!r}", file, item_line(granted, index)
                )
        found[role] = frozenset(p for p in granted if p in permissions)
    return found


def _routes(
    document: Any, permissions: Mapping[str, str], file: str, diag: Diagnostics
) -> dict[RouteKey, str | None]:
    section = _section(document, "routes", file, diag)
    found: dict[RouteKey, str | None] = {}
    for key, needed in (section or {}).items():
        line = key_line(section, key)
        match = _ROUTE_KEY.match(key) if isinstance(key, str) else None
        if match is None or match["method"] not in HTTP_METHODS:
            diag.error(
                f"{key!r} is not 'METHOD /path' with METHOD one of {', '.join(HTTP_METHODS)}", file, line
            )
        elif needed != PUBLIC and needed not in permissions:
            diag.error(f"{key} needs unknown permission {needed!r}; say {PUBLIC} or a listed one", file, line)
        else:
            found[(match["method"], match["path"])] = None if needed == PUBLIC else needed
    return found


def check_coverage(policy: AccessPolicy, served: Iterable[RouteKey]) -> None:
    """Raise ConfigError unless every served route has an entry and every entry names a served route."""
    diag = Diagnostics()
    served_set = set(served)
    for method, path in sorted(served_set - set(policy.routes)):
        diag.error(f"route {method} {path} has no entry: add it with the permission it needs", policy.source)
    for method, path in sorted(set(policy.routes) - served_set):
        diag.error(f"entry {method} {path} names no route the API serves: remove it", policy.source)
    diag.raise_if_any()
