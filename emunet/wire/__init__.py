"""Bytes <-> headers for every protocol emunet carries.  No trio here: pure functions and
frozen attrs classes.  ``X.parse(data)`` raises only :class:`MalformedPacket`; ``x.build(...)``
returns bytes."""

from .errors import MalformedPacket

__all__ = ["MalformedPacket"]
