"""The `credflow` command line: run extractions, run a worker, manage keys."""
