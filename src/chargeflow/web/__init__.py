"""FastAPI: the REST API, the driver's page and the site owner's dashboard."""
