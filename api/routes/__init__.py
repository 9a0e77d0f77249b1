"""One module per topic, each exposing `router`; api.main includes them all."""
