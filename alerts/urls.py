"""Pages of the alerts app (subscriptions, webhook endpoints, delivery log), under /alerts/."""

urlpatterns: list = []
