"""Pages of the alerts app (subscriptions, webhook endpoints, delivery log), under /alerts/."""

from django.urls import path

from alerts import chat_views, views, watch_views

app_name = "alerts"

urlpatterns = [
    path("", views.index, name="index"),
    path("subscriptions/new/", views.subscription_create, name="subscription-create"),
    path(
        "subscriptions/<uuid:public_id>/edit/",
        views.subscription_edit,
        name="subscription-edit",
    ),
    path(
        "subscriptions/<uuid:public_id>/toggle/",
        views.subscription_toggle,
        name="subscription-toggle",
    ),
    path(
        "subscriptions/<uuid:public_id>/delete/",
        views.subscription_delete,
        name="subscription-delete",
    ),
    path("webhooks/new/", views.webhook_create, name="webhook-create"),
    path("webhooks/<uuid:public_id>/", views.webhook_detail, name="webhook-detail"),
    path("webhooks/<uuid:public_id>/rotate/", views.webhook_rotate, name="webhook-rotate"),
    path("webhooks/<uuid:public_id>/test/", views.webhook_test, name="webhook-test"),
    path("webhooks/<uuid:public_id>/delete/", views.webhook_delete, name="webhook-delete"),
    path("telegram/connect/", chat_views.telegram_connect, name="telegram-connect"),
    path("chats/new/<str:service>/", chat_views.chat_hook_create, name="chat-create"),
    path("chats/<uuid:public_id>/", chat_views.chat_detail, name="chat-detail"),
    path("chats/<uuid:public_id>/test/", chat_views.chat_test, name="chat-test"),
    path("chats/<uuid:public_id>/delete/", chat_views.chat_delete, name="chat-delete"),
    path("deliveries/", views.delivery_list, name="deliveries"),
    path("deliveries/<uuid:public_id>/", views.delivery_detail, name="delivery-detail"),
    path(
        "deliveries/<uuid:public_id>/redeliver/",
        views.delivery_redeliver,
        name="delivery-redeliver",
    ),
    path("unsubscribe/<str:token>/", views.unsubscribe, name="unsubscribe"),
    # Watchlists (issue 21)
    path("watching/", watch_views.watching, name="watching"),
    path("watching/add/", watch_views.entry_add, name="watch-add"),
    path("watching/<uuid:public_id>/delete/", watch_views.entry_delete, name="watch-delete"),
    path("watching/import/", watch_views.watchlist_import, name="watch-import"),
    path("watching/export/", watch_views.watchlist_export, name="watch-export"),
    path("watching/labels/add/", watch_views.label_add, name="label-add"),
    path("watching/labels/<int:pk>/delete/", watch_views.label_delete, name="label-delete"),
]
