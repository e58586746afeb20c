"""``aion dashboard``: a read-only web app on aion's Redis (alerts, instrument, validation,
health views). :func:`aion.dashboard.app.create_app` builds it; the page is ``static/``."""
