"""Stops the work of a client that left before its response began.

Starlette notices a vanished client only when it writes to it, and a route
that is still waiting for the engine's first token (a long prompt being read,
a request queued behind others) writes nothing: without this, the engine would
read the whole prompt for nobody. This middleware watches for the ASGI
``http.disconnect`` message while no response has started and cancels the
route's task; cancelling a gRPC read cancels the call, and the engine drops
the request at its next step. Once a response has started, the route and the
response handle disconnects themselves (they see the same messages)."""

import asyncio


class CancelOnDisconnect:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        messages: asyncio.Queue = asyncio.Queue()
        gone = asyncio.Event()
        started = False

        async def watch() -> None:
            while True:
                message = await receive()
                messages.put_nowait(message)
                if message["type"] == "http.disconnect":
                    gone.set()
                    return

        async def app_receive():
            return await messages.get()

        async def app_send(message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        watcher = asyncio.create_task(watch())
        work = asyncio.create_task(self.app(scope, app_receive, app_send))
        left = asyncio.create_task(gone.wait())
        try:
            await asyncio.wait({work, left}, return_when=asyncio.FIRST_COMPLETED)
            if not work.done() and not started:
                work.cancel()
                # Only the route was cancelled, by us: this request ends quietly.
                await asyncio.wait({work})
                if work.cancelled():
                    return
            await work
        finally:
            for task in (watcher, left, work):
                if not task.done():
                    task.cancel()
            # Let the cancelled helpers finish before this request is done.
            await asyncio.gather(watcher, left, return_exceptions=True)
