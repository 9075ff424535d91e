"""Small I/O helpers: where streamed output goes, and where stdin comes from."""

from __future__ import annotations

import codecs
import io
from typing import Any, Callable


def _is_binary_writer(writer: Any) -> bool:
    """True when ``writer.write`` wants bytes rather than str."""
    if isinstance(writer, io.TextIOBase):
        return False
    if isinstance(writer, (io.RawIOBase, io.BufferedIOBase)):
        return True
    mode = getattr(writer, "mode", None)
    if isinstance(mode, str):
        return "b" in mode
    return False


class OutputSink:
    """Delivers decoded chunks of one output stream to a user target.

    The target may be ``None`` (dropped), a callable (called with ``bytes``),
    a binary writer (given the exact bytes) or a text writer (given UTF-8
    text; a multi-byte character split across chunks is kept whole).
    """

    def __init__(self, target: Any) -> None:
        self._target = target
        self._call: Callable[[bytes], Any] | None = None
        self._binary = False
        self._decoder: codecs.IncrementalDecoder | None = None
        if target is None:
            return
        if _is_writer(target):
            self._binary = _is_binary_writer(target)
            if not self._binary:
                self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        elif callable(target):
            self._call = target
        else:
            raise TypeError(
                "output target must be a writer (text or binary), a callable or None"
            )

    def write(self, data: bytes) -> None:
        if self._target is None or not data:
            return
        if self._call is not None:
            self._call(data)
            return
        if self._binary:
            self._target.write(data)
        else:
            assert self._decoder is not None
            text = self._decoder.decode(data)
            if text:
                self._target.write(text)
        self._flush()

    def finish(self) -> None:
        """Write out what an unfinished UTF-8 sequence left behind."""
        if self._decoder is not None:
            tail = self._decoder.decode(b"", final=True)
            if tail:
                self._target.write(tail)
                self._flush()

    def _flush(self) -> None:
        flush = getattr(self._target, "flush", None)
        if callable(flush):
            flush()


def _is_writer(target: Any) -> bool:
    return callable(getattr(target, "write", None))


def as_reader(stdin: Any) -> Any:
    """Normalise what callers pass as stdin: ``bytes``/``str`` become a stream."""
    if isinstance(stdin, (bytes, bytearray, memoryview)):
        return io.BytesIO(bytes(stdin))
    if isinstance(stdin, str):
        return io.BytesIO(stdin.encode("utf-8"))
    if stdin is not None and not callable(getattr(stdin, "read", None)):
        raise TypeError("stdin must be a readable stream, bytes, str or None")
    return stdin


def chunk_to_bytes(chunk: Any) -> bytes:
    if isinstance(chunk, str):
        return chunk.encode("utf-8")
    if isinstance(chunk, bytes):
        return chunk
    return bytes(chunk)
