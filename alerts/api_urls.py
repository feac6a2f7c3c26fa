"""REST API routes of this app, mounted under /api/v1/ by whaleproject.urls."""

from rest_framework.routers import SimpleRouter

from alerts.api import DeliveryViewSet, SubscriptionViewSet, WebhookEndpointViewSet

router = SimpleRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("deliveries", DeliveryViewSet, basename="delivery")

urlpatterns = router.urls
