"""REST API routes of this app, mounted under /api/v1/ by whaleproject.urls."""

urlpatterns: list = []
