"""The grid registry: versions, containment, locate (in memory and in PostGIS), imports, exports,
layout, and OGC API - Features.
"""
