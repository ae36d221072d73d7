"""Headless collectors: each source's I/O, turned into frozen values. Never imports textual."""

from mltui.collectors.base import Source, SourceError, SourceResult
from mltui.collectors.collect import FleetCollector, configured_sources

__all__ = ["FleetCollector", "Source", "SourceError", "SourceResult", "configured_sources"]
