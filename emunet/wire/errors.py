"""The one error a parser of untrusted bytes may raise."""


class MalformedPacket(ValueError):
    """Bytes that do not form a valid header; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
