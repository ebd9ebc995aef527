"""citygrid service: HTTP API, persistence and CLI."""
