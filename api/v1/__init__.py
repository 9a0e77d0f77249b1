"""The REST API, version 1: `/api/v1`, its own OpenAPI document and docs, RFC 9457 errors."""
