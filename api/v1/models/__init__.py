"""Request and response bodies of /api/v1, one module per resource: what goes over the wire."""
