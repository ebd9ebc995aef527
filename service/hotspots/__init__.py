"""Hotspots: places that breed problems, their influence zones and the grids they touch."""
