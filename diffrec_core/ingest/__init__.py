"""Raw data in: file readers, the synthetic generator, and loading into the warehouse."""

from diffrec_core.ingest.loader import IngestResult, file_sha256, frame_sha256, ingest_file, ingest_frame
from diffrec_core.ingest.readers import FORMATS, IngestError, detect_format

__all__ = [
    "FORMATS",
    "IngestError",
    "IngestResult",
    "detect_format",
    "file_sha256",
    "frame_sha256",
    "ingest_file",
    "ingest_frame",
]
