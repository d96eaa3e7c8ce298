"""The SQL extraction workflow and its retry policies."""

from workflows.extraction import SqlExtractionWorkflow

ALL_WORKFLOWS = [SqlExtractionWorkflow]

__all__ = ["ALL_WORKFLOWS", "SqlExtractionWorkflow"]
