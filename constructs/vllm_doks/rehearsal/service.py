"""What the rehearsal's local stand-ins (the control plane, the simulated DigitalOcean API)
share: a ``with`` block starts one and stops it on the way out, also when the block raises."""

from __future__ import annotations

from types import TracebackType
from typing import Self


class LocalService:
    """A process or server started on ``__enter__`` and stopped on ``__exit__``."""

    def start(self) -> object:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
