"""Pure spatial logic for citygrid: no web framework, no database session."""
