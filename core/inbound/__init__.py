"""Messages that reach a tenant: inbound SMS and email, stored once and matched to their lead."""
