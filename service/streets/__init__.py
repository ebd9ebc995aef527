"""Streets: centre lines for street-length patrol coverage, imported and edited by GIS editors."""
