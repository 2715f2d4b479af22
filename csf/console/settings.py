"""The console's settings, checked when made."""

from __future__ import annotations

from dataclasses import dataclass

from csf._exceptions import ConfigError
from csf.config import ZooKeeperURL, parse_registry_url

DEFAULT_IDLE_S = 30 * 60.0
DEFAULT_MAX_LOGINS = 32
DEFAULT_REFRESH_S = 0.5
"""How often an open page's live parts are read again (a change shows within twice that)."""


@dataclass(frozen=True)
class ConsoleSettings:
    registry: str
    """zk://host:port[/chroot]: logins bring their own credentials; one in the URL is ignored."""
    open_tenants: bool = False
    """Let tenants whose nodes carry no ACL log in (with no user and password)."""
    idle_s: float = DEFAULT_IDLE_S
    max_logins: int = DEFAULT_MAX_LOGINS
    refresh_s: float = DEFAULT_REFRESH_S

    def __post_init__(self) -> None:
        if not isinstance(self.zookeeper, ZooKeeperURL):
            raise ConfigError("registry: the console needs a zk:// registry")
        if not 60 <= self.idle_s <= 7 * 86400:
            raise ConfigError(f"idle_s: {self.idle_s} is not 60 to 604800 seconds")
        if not 1 <= self.max_logins <= 1000:
            raise ConfigError(f"max_logins: {self.max_logins} is not 1 to 1000")
        if not 0.05 <= self.refresh_s <= 10:
            raise ConfigError(f"refresh_s: {self.refresh_s} is not 0.05 to 10 seconds")

    @property
    def zookeeper(self) -> ZooKeeperURL:
        url = parse_registry_url(self.registry)
        if not isinstance(url, ZooKeeperURL):
            raise ConfigError("registry: the console needs a zk:// registry")
        return url
