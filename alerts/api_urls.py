"""REST API routes of this app, mounted under /api/v1/ by whaleproject.urls."""

from rest_framework.routers import SimpleRouter

from alerts.api import DeliveryViewSet, SubscriptionViewSet, WebhookEndpointViewSet
from alerts.chat_api import ChatEndpointViewSet
from alerts.watchlist_api import PrivateLabelViewSet, WatchlistViewSet

router = SimpleRouter()
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
router.register("webhooks", WebhookEndpointViewSet, basename="webhook")
router.register("chats", ChatEndpointViewSet, basename="chat")
router.register("deliveries", DeliveryViewSet, basename="delivery")
# Watchlists (issue 21)
router.register("watchlist", WatchlistViewSet, basename="watchlist")
router.register("private-labels", PrivateLabelViewSet, basename="private-label")

urlpatterns = router.urls
