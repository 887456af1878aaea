"""Runs started from the lab: ``nbflow execute`` subprocesses and their event streams."""

from __future__ import annotations


class RunManager:
    def __init__(self, *, cancel_grace: float = 30.0) -> None:
        self.cancel_grace = cancel_grace

    async def cancel_all(self) -> None:
        return None
