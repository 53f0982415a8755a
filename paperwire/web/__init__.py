"""The site: FastAPI app factory (:func:`paperwire.web.app.create_app`), pages, JSON API, feeds."""


def create_app(settings, **kwargs):
    """Build the FastAPI app (imported lazily so ``import paperwire.web`` stays cheap)."""
    from paperwire.web.app import create_app as _create

    return _create(settings, **kwargs)
