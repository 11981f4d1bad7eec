"""The two names that tell one hub deployment from another: its bus namespace and its instance URI.

Settings check them at start-up, the bus maps its exchange and queue names under the namespace, and the
envelope prefixes event sources with the instance URI; the rules live here so all three agree.
"""

from __future__ import annotations

import re

DEFAULT_NAMESPACE = "yekuo"
# One word, so a namespaced name is still `<namespace>.<name>` and never looks like another namespace's.
NAMESPACE_PATTERN = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")

# The hub instance's identity on the bus (YEKUO_INSTANCE_URI): an absolute URI with no '/', '?' or '#', so
# that `<instance><producer path>` (urn:yekuo:hub:prod-gd/marketing/application) splits back unambiguously.
DEFAULT_INSTANCE_URI = "urn:yekuo:hub:default"
INSTANCE_URI_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:[^/?#\s]+$")


def namespace_problem(namespace: str) -> str:
    """What is wrong with a namespace that does not match NAMESPACE_PATTERN."""
    return (
        f"bus namespace {namespace!r} must be one lower-case word of letters, digits, '_' or '-' "
        "(at most 32, starting with a letter), e.g. 'staging'"
    )


def check_instance_uri(uri: str) -> str:
    """The instance URI, or a ValueError saying what it must look like."""
    if not INSTANCE_URI_PATTERN.fullmatch(uri):
        raise ValueError(
            f"instance URI {uri!r} must be an absolute URI without '/', '?' or '#', "
            "e.g. urn:yekuo:hub:prod-gd"
        )
    return uri
