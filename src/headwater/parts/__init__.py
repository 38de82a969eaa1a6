"""Lake parts: the manifest and the one part writer every producer (sheet staging, exports, UNLOAD) uses.

Data flows one way: sources -> parts -> lake -> warehouse; this package imports only the lake and types.
"""

from headwater.parts.destination import Claim, claim_prefix
from headwater.parts.encoders import csv_line
from headwater.parts.manifest import FORMATS, MANIFEST_NAME, Manifest, Part, read_manifest
from headwater.parts.writer import ExportOptions, ExportResult, Progress, RowStream, write_stream_to_lake

__all__ = [
    "FORMATS",
    "MANIFEST_NAME",
    "Claim",
    "ExportOptions",
    "ExportResult",
    "Manifest",
    "Part",
    "Progress",
    "RowStream",
    "claim_prefix",
    "csv_line",
    "read_manifest",
    "write_stream_to_lake",
]
