"""SCAFFOLD: images API routes."""
from servin.http.routing import Routes

routes = Routes()
