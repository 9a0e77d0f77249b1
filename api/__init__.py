"""The HTTP service: health, provider webhooks and unsubscribe links, in front of core's services."""
