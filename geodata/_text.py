"""Decoding text files with an error that names the line and byte (standard library only: the timetable reader
uses it without pulling in pandas)."""

from __future__ import annotations

from pathlib import Path

from geodata.errors import InputFileError


def decode_text(data: bytes, path: Path) -> str:
    """``data`` as UTF-8 text (a BOM is dropped); :class:`InputFileError` naming the line and byte otherwise."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        byte = data[exc.start]
        hint = " (it looks like Latin-1 or Windows-1252 text)" if 0x80 <= byte <= 0xFF else ""
        raise InputFileError(
            f"{path}: line {line}: byte 0x{byte:02x} is not UTF-8{hint}; save the file as UTF-8 (in Excel: 'CSV UTF-8')"
        ) from None
