"""The one error type for a user's mistake."""

from __future__ import annotations


class UserError(Exception):
    """A mistake the user can fix; the CLI prints its one-line message and exits 2."""
