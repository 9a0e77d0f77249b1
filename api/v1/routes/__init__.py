"""One module per resource; each holds a `router` that api.v1.app includes."""
