"""The REST API under /api/v1/ (docs/API.md): views, serializers, filters, pagination, CSV, throttling."""
