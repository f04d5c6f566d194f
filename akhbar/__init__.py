"""akhbar: Arabic news ingestion on Apache Beam."""

__version__ = "0.1.0"
