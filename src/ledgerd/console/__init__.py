"""The operator's page: a read-only view of the pipeline at ``/`` of the operations port.

``views`` gathers what the page shows (bounded lists, cached for a second), ``web`` adds
the page and its JSON endpoints to the operations port's aiohttp application, and
``static/`` holds the page itself (HTML, CSS and a few lines of JS; no CDN, so it works
offline). docs/operations.md ("The operator's page") says who may reach it.
"""

from ledgerd.console.views import Console

__all__ = ["Console"]
