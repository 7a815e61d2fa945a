"""A caseworker in a real browser: sign in, see the task, take it over; the ack is on Kafka.

Drives Debian's Chromium (``/usr/bin/chromium``, installed by ``make test``) through Playwright;
Playwright cannot download its own browsers here. No Chromium is a failure, not a skip.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect, sync_playwright

from bus.crypto import unseal_with
from tests.support import sealed
from tests.support.inbox_harness import (
    inbox_settings,
    person,
    publish_task,
    read_all,
    routed_task,
    running_inbox,
    wait_until,
)

pytestmark = pytest.mark.browser

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        pytest.fail(
            f"{CHROMIUM} is missing: the browser test needs Debian's Chromium "
            "(`make browser-deps`, or `apt-get install chromium`)",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def test_caseworker_signs_in_sees_the_task_and_takes_it_over(
    browser: Browser, kafka_bootstrap: str, unique: Callable[[str], str], tmp_path: Path
) -> None:
    settings = inbox_settings(kafka_bootstrap, unique, tmp_path)
    who = person(21, name="Sofie Browsersen")
    task = routed_task(who)
    publish_task(settings, task)
    key = sealed.keyring(settings).sealing_key(who.pseudonym)  # as a connector made it
    with running_inbox(settings) as running:
        demo = running.inbox.demo
        assert demo is not None
        wait_until(
            lambda: running.inbox.store.task("161", "youth_unit", task["task_id"]),
            "the task in the inbox",
        )
        page = browser.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{running.url}/tasks")
        expect(page).to_have_url(f"{running.url}/login")

        page.get_by_label("Staff id").fill(demo.staff_id)
        page.get_by_label("Password").fill("not the password")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("alert")).to_have_text("Wrong staff id or password.")

        page.get_by_label("Password").fill(demo.password)
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Open tasks")).to_be_visible()
        row = page.locator(f'tr[data-task-id="{task["task_id"]}"]')
        expect(row).to_contain_text("Sofie Browsersen")
        expect(row).to_contain_text("Dropout notice")
        expect(row).to_contain_text("KUI-loven § 12 c")
        expect(row).to_contain_text("left")

        row.get_by_role("link").click()
        expect(page.locator("#fields")).to_contain_text(who.cpr)
        page.get_by_label("Note (optional, no personal data)").fill("called the young person")
        page.get_by_role("button", name="Take over").click()
        expect(page.locator("#status")).to_contain_text(f"Taken over by {demo.staff_id}")
        expect(page.get_by_role("status")).to_contain_text("You took over this task")

        page.get_by_role("link", name="← Open tasks").click()
        expect(page.locator("#open-tasks")).to_have_count(0)
        expect(page.locator("#taken-over")).to_contain_text(demo.staff_id)
        page.close()

    acks = wait_until(
        lambda: read_all(settings, settings.acks_topic), "the acknowledgement on task-acks.161"
    )
    assert [(a.record["task_id"], a.record["taken_over_by"], a.record["note"]) for a in acks] == [
        (task["task_id"], demo.staff_id, None)  # the note travels sealed
    ]
    assert unseal_with(key, acks[0].record["sealed_note"]) == b"called the young person"
