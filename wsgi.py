"""WSGI entry point: ``gunicorn wsgi:app``."""

from qalitel import create_app

app = create_app()
