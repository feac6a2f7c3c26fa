"""The dashboard's live feed. Channels carries display hints only; the database is the truth."""

from channels.generic.websocket import AsyncJsonWebsocketConsumer

from detection.push import WHALE_FEED_GROUP

CLOSE_UNAUTHENTICATED = 4401


class WhaleFeedConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first: a close before the handshake reaches the client as a bare 403,
            # and clients need the 4401 code to tell "log in again" from a network fault.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        await self.channel_layer.group_add(WHALE_FEED_GROUP, self.channel_name)
        await self.accept()

    async def disconnect(self, code):
        await self.channel_layer.group_discard(WHALE_FEED_GROUP, self.channel_name)

    async def whale_event(self, message):
        await self.send_json({"type": "whale.event", "event": message["event"]})

    async def ingest_status(self, message):
        await self.send_json({"type": "ingest.status", "status": message["status"]})
