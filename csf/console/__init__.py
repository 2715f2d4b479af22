"""csf-console: the operators' web portal over a CSF registry (DESIGN section 7)."""

from csf.console.app import create_app
from csf.console.settings import ConsoleSettings

__all__ = ["ConsoleSettings", "create_app"]
