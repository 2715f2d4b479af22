"""csf-gateway: HTTP/JSON in, governed CSF calls out (DESIGN section 6).

The access layer (`access`) checks who calls; routes come from the descriptors that
`csf-registry import` stored (`catalogue`, `routes`), requests and replies are proto3
JSON (`transcode`), and the dispatch layer is a `csf.Consumer` (`dispatch`). Install it
with `pip install 'csf[gateway]'`.
"""

from __future__ import annotations

from csf.gateway.access import sign, signed_headers
from csf.gateway.app import Gateway
from csf.gateway.settings import GatewaySettings

__all__ = ["Gateway", "GatewaySettings", "sign", "signed_headers"]
