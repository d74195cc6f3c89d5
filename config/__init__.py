"""Configuration every process reads: settings from the environment and the process specs.

The lowest layer above the standard library and pydantic: ``floor/`` (the CLI and supervisor),
the hot path, the API, the worker and the bridge all import it; it imports none of them.
"""
