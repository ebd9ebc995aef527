"""Open311 GeoReport v2: its documents (XML and JSON), its parameters and its queries.

The routes are in ``service.routers.open311``. ``documents`` imports nothing from citygrid, so
the app's error rendering (``service.errors``) can ask it whether a path is an Open311 one.
"""
