"""Blocking work on a worker thread that the caller waits out even when it is
cancelled; and stopping a background task."""

import asyncio
import contextlib
from collections.abc import Callable


async def run_to_completion(fn: Callable, /, *args, on_cancel: Callable[[], None] | None = None, **kwargs):
    """``fn(*args, **kwargs)`` on a worker thread. When the awaiting task is
    cancelled, ``on_cancel()`` asks the work to stop and the task still waits
    for the thread before the cancellation goes on: a model the thread uses
    must not be released, and so perhaps freed, under it."""
    future = asyncio.ensure_future(asyncio.to_thread(fn, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        if on_cancel is not None:
            on_cancel()
        while not future.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait({future})
        raise


async def stop_task(task: asyncio.Task | None) -> None:
    """Cancels a background task and waits until it has stopped."""
    if task is None:
        return
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
