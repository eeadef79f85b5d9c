"""VK events for the crash-safety and database-outage suites."""

from __future__ import annotations

from tests.helpers.workload import native_events

GROUP_ID = 200000001


SECRET = "s3cr3t-callback"


def vk_events(count: int, start: int) -> list[tuple[str, bytes]]:
    """VK Callback ``message_new`` events (odd numbers of the workload are VK)."""
    found = []
    for native in native_events(count * 2, threads=50, start=start):
        if native.channel.value == "vk":
            found.append((native.external_id, native.body))
    return found
