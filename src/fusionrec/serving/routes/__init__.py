"""The HTTP routes of :func:`fusionrec.serving.app.create_app`, one module per idea (FastAPI ``APIRouter`` s),
sharing the checks of :mod:`fusionrec.serving.routes.deps`.  Imported only when an app is built (FastAPI)."""
