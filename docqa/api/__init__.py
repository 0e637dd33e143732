"""The HTTP API and the embeddable widget: ``create_app(settings)`` builds the FastAPI app,
``run_api(settings)`` (in ``docqa.api.server``) serves it under uvicorn. Nothing heavy at import time."""
