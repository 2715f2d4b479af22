"""Kazoo logs every request it sends at DEBUG, the session's `Auth` request included,
and that request holds the tenant's `user:password`. `mask_kazoo_credentials` puts a
filter on kazoo's loggers that masks the password in those records, whoever handles them.
"""

from __future__ import annotations

import logging

from kazoo.protocol.serialization import Auth

from csf._digest import MASK

# kazoo.client's logger carries the connection's records too (it hands it down).
_KAZOO_LOGGERS = ("kazoo.client", "kazoo.protocol.connection")


class _MaskCredentials(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(isinstance(a, Auth) for a in record.args):
            record.args = tuple(_masked(a) if isinstance(a, Auth) else a for a in record.args)
        return True


def _masked(auth: Auth) -> Auth:
    credential = auth.auth
    user = credential.partition(":")[0] + ":" if isinstance(credential, str) else ""
    return auth._replace(auth=user + MASK)


def mask_kazoo_credentials() -> None:
    """Install the filter on kazoo's loggers, once."""
    for name in _KAZOO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(found, _MaskCredentials) for found in logger.filters):
            logger.addFilter(_MaskCredentials())
