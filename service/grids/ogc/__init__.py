"""OGC API – Features Part 1 over the grid registry: queries, parameters, API definition, HTML.

The routes live in ``service/routers/ogc.py``; this package knows no FastAPI routing.
"""
