"""Map layers and pages: data in, HTML/tiles out; never a database session."""
