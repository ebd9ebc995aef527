"""Seeded demo data: a city with its grids and roads, hotspots, cases and a week of patrols.

Generators only: they build frames from a seed and may use :mod:`gis`, never the service or
the map layers (the service's ``service/demo.py`` loads what they build).
"""
