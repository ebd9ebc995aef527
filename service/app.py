"""ASGI entry point for servers (``uvicorn service.app:app``): settings from the environment."""

from service.factory import create_app

app = create_app(claim_scratch=True)
