from django.urls import path

from dashboard.consumers import WhaleFeedConsumer

websocket_urlpatterns = [
    path("ws/whales/", WhaleFeedConsumer.as_asgi()),
]
