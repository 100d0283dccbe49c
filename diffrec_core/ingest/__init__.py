"""Raw data in: file readers, the synthetic generator, and loading into the warehouse."""

from diffrec_core.ingest.loader import (
    IngestResult,
    file_sha256,
    find_batch,
    frame_sha256,
    ingest_file,
    ingest_frame,
    remove_batch,
)
from diffrec_core.ingest.readers import FORMATS, IngestError, detect_format
from diffrec_core.ingest.synthetic import SyntheticConfig, generate, ingest_synthetic

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestResult",
    "SyntheticConfig",
    "detect_format",
    "file_sha256",
    "find_batch",
    "frame_sha256",
    "generate",
    "ingest_file",
    "ingest_frame",
    "ingest_synthetic",
    "remove_batch",
]
