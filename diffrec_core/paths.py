"""Folders the project writes into (checkpoints, reports), checked before any work is done."""

from __future__ import annotations

from pathlib import Path


def output_folder(path: str | Path, what: str, *, create: bool = True) -> Path:
    """``path`` as a folder to write into, created when missing (unless ``create`` is false: a caller
    that would rather create it once its inputs have been read); ValueError naming ``what`` and the
    path when it is a file or cannot be created."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path}: it is a file, not a folder")
    above = next(p for p in path.absolute().parents if p.exists())  # the folder that creating it would start from
    if not path.exists() and not above.is_dir():
        raise ValueError(f"{what} {path}: {above} is a file, not a folder")
    if create:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"{what} {path}: {exc.strerror or exc}") from None
    return path
