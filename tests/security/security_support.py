"""Keys of the security tests' signing server."""

from __future__ import annotations

KEYS = {
    "writer": {"secrets": ["new-secret", "old-secret"], "scopes": ["read", "write"]},
    "reader": {"secrets": ["read-secret"], "scopes": ["read"]},
    "ops": {"secrets": ["ops-secret"], "scopes": ["read", "admin"]},
}
