"""The reading room in a real browser: Debian's Chromium, driven through Debian's chromedriver,
reads what a real `mediawatch run` daemon crawled from the fixture web — sign in, Today, a
topic, a story and its follow-ups, an article's evidence, a draft query and a broken one,
sources, alerts, and marking the story reviewed.

Selenium, not Playwright: Selenium is a pure-Python client of the WebDriver protocol, so it
drives exactly the browser the distribution ships through the chromedriver built with it
(same version, same package source); given `Service(executable_path=…)` and a
`binary_location`, Selenium Manager has nothing to look up and never downloads (SE_OFFLINE
says so too). Playwright's wheel bundles its own Node driver and expects its own patched
browser builds, which `playwright install` downloads; against another Chromium it works only
as far as their CDP versions agree.

Runs whenever /usr/bin/chromium is installed; CI (.ci/run) installs it and sets
MEDIAWATCH_REQUIRE_BROWSER=1, so there it can never skip. Screenshots of the main pages go
to $MEDIAWATCH_SCREENSHOTS (default: the test's tmp_path); the README's pictures come from

    MEDIAWATCH_SCREENSHOTS=docs/screenshots pytest -n 0 tests/test_browser.py

(with fonts-noto-cjk installed, or the Chinese shows as boxes)."""
from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import Cli, cli_for, web_config
from tests.receivers import free_port
from tests.test_daemon import Running, daemon
from tests.webserver import FixtureWeb

pytestmark = [pytest.mark.browser, pytest.mark.long(20)]

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
REQUIRED = os.environ.get("MEDIAWATCH_REQUIRE_BROWSER") == "1"
if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
    if REQUIRED:
        raise RuntimeError(f"MEDIAWATCH_REQUIRE_BROWSER=1 but {CHROMIUM} or {CHROMEDRIVER} is "
                           "missing: apt-get install chromium chromium-driver")
    pytest.skip(f"no {CHROMIUM} and {CHROMEDRIVER} (Debian's chromium, chromium-driver): the "
                "browser test runs where they are installed, and always in CI",
                allow_module_level=True)
os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager: never fetch anything
from selenium import webdriver  # noqa: E402 — only once the browser is known to be there
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.remote.webelement import WebElement  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

TOKEN = "reading-room-browser-test-token"
WIDE, PHONE = (1280, 900), (390, 844)
READER_ZONE = "Asia/Shanghai"  # not UTC: a time app.js localised reads differently
ESPIONAGE = "@mss AND (student* OR 留学生) AND (spy* OR espionage OR 间谍 OR 策反)"
ALIASES = {"mss": ["国家安全部", "国安部", "国家安全机关", "MSS", "Ministry of State Security",
                   "state security"]}
HOSTILE_TITLE = "<script>alert(1)</script> Students warned of spy \u202eevil"
SOURCES = [
    {"name": "statements", "kind": "feed", "url": "/feeds/statements.xml", "every": "2s",
     "language": "zh", "official": True},  # its statement leads the story
    {"name": "coverage", "kind": "feed", "url": "/feeds/coverage.atom", "every": "2s"},
    {"name": "hostile", "kind": "feed", "url": "/feeds/_hostile.xml", "every": "2s"},
    {"name": "gone", "kind": "feed", "url": "/status/500", "every": "2s"},  # failing
]
REPRINTS = {"name": "reprints", "kind": "feed", "url": "/feeds/reprints.xml", "every": "2s"}


# ---------------------------------------------------------------- the daemon and its data

def hostile_site(web: FixtureWeb) -> None:
    """A feed whose one article has a `<script>` title with a bidi override and a
    `javascript:` canonical link: it matches the students topic, and must stay inert."""
    title = HOSTILE_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    body = "".join(
        f"<p>Paragraph {n}: universities told international students that a spy network "
        f"posing as a recruitment agency had approached students on campus this term, and "
        f"asked them to report any such approach to the security office.</p>" for n in range(4))
    (web.root / "hostile").mkdir()
    (web.root / "hostile" / "warning.html").write_text(
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f'<meta property="article:published_time" content="2026-11-26T09:00:00+00:00">'
        f'<link rel="canonical" href="javascript:alert(2)"></head><body><main><article>'
        f"<h1>{title}</h1>{body}</article></main></body></html>", encoding="utf-8")
    (web.root / "feeds" / "_hostile.xml").write_text(
        '<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>Campus'
        f"</title><item><title>{title.replace('&', '&amp;')}</title>"
        "<link>/hostile/warning.html</link><pubDate>Thu, 26 Nov 2026 09:00:00 +0000</pubDate>"
        "</item></channel></rss>", encoding="utf-8")


def mission(web: FixtureWeb, alerts: Path) -> dict[str, Any]:
    config = web_config(web, *SOURCES, backfill="36500d")
    config["daemon"] = {"dispatch_every": "1s", "startup_spread": "1s"}
    config["web"] = {"token": "${MEDIAWATCH_WEB_TOKEN}"}
    config["aliases"] = ALIASES
    config["channels"] = {"desk": {"type": "jsonl", "path": str(alerts)}}
    config["topics"] = [
        {"name": "espionage-warnings", "query": ESPIONAGE, "channels": ["desk"]},
        {"name": "students", "query": "留学生 OR student*", "channels": ["desk"]},
    ]
    return config


def articles(cli: Cli) -> dict[str, dict[str, Any]]:
    """The stored articles (copies too) by path on the fixture web; {} while the daemon
    creates its database."""
    listed = cli("articles", "list", "--all", "--json")
    if listed.code != 0:
        return {}
    return {urlsplit(a["canonical_url"]).path.lstrip("/"): a for a in listed.json()}


@pytest.fixture
def crawled(web: FixtureWeb, tmp_path: Path) -> Iterator[tuple[Cli, Running, str]]:
    """A daemon that crawled the statement, its coverage, a hostile page and then the
    statement's reprints (added by a reload, so they fold onto what they copy); its reading
    room's address."""
    hostile_site(web)
    cli = cli_for(tmp_path, f"sqlite:///{tmp_path / 'mediawatch.db'}")
    cli.env["MEDIAWATCH_WEB_TOKEN"] = TOKEN
    config = mission(web, tmp_path / "alerts.jsonl")
    cli.write_config(config)
    port = free_port()
    with daemon(cli, "--listen", f"127.0.0.1:{port}") as running:
        def matched() -> bool:
            stored = articles(cli)
            return all(stored.get(path, {}).get("topics") for path in (
                "statements/warning-students.html", "coverage/2026/11/students-subverted.html",
                "hostile/warning.html"))

        running.wait_for(matched, "the statement, its coverage and the hostile page matched")
        running.wait_for(lambda: web.hits("/status/500"), "a failed poll")
        config["sources"] += web_config(web, REPRINTS)["sources"]
        cli.write_config(config)
        running.process.send_signal(signal.SIGHUP)
        running.wait_for(lambda: len(articles(cli).get("statements/warning-students.html", {})
                                     .get("copies", [])) == 2, "the reprints folded")
        running.wait_for(lambda: (tmp_path / "alerts.jsonl").exists(), "an alert sent")
        yield cli, running, f"http://127.0.0.1:{port}"
        running.alive()


# ---------------------------------------------------------------- the browser

class Reader:
    """Chromium as an analyst uses it, with the console kept and screenshots taken."""

    def __init__(self, base: str, shots: Path) -> None:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        options.add_argument("--headless=new")
        if os.geteuid() == 0:
            options.add_argument("--no-sandbox")  # Chromium's sandbox refuses to run as root
        options.add_argument("--disable-dev-shm-usage")
        options.add_argument(f"--window-size={WIDE[0]},{WIDE[1]}")
        options.add_argument("--lang=en-GB")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER),
                                       options=options)
        self.driver.execute_cdp_cmd("Emulation.setTimezoneOverride", {"timezoneId": READER_ZONE})
        self.base, self.shots, self.console = base, shots, []
        self.wait = WebDriverWait(self.driver, 15)

    def quit(self) -> None:
        self.driver.quit()

    def open(self, path: str) -> None:
        self.driver.get(self.base + path)
        self.settled()

    def settled(self) -> None:
        """The page loaded (Selenium waits for its load event), app.js ran, and the console
        so far is kept."""
        self.wait.until(lambda d: d.execute_script("return document.readyState") == "complete")
        self.console += self.driver.get_log("browser")
        assert_no_alert(self.driver)

    @property
    def path(self) -> str:
        split = urlsplit(self.driver.current_url)
        return split.path + (f"?{split.query}" if split.query else "")

    def one(self, css: str, within: WebElement | None = None) -> WebElement:
        return (within or self.driver).find_element(By.CSS_SELECTOR, css)

    def all(self, css: str, within: WebElement | None = None) -> list[WebElement]:
        return (within or self.driver).find_elements(By.CSS_SELECTOR, css)

    def click(self, element: WebElement) -> None:
        """Click and wait for the next page."""
        before = self.driver.find_element(By.TAG_NAME, "html")
        element.click()
        self.wait.until(lambda d: _stale(before))
        self.settled()

    def submit(self, button: WebElement) -> None:
        self.click(button)

    def shoot(self, name: str, size: tuple[int, int] = WIDE) -> Path:
        if size != WIDE:
            self.driver.set_window_size(*size)
        try:
            target = self.shots / f"{name}.png"
            self.driver.save_screenshot(str(target))
        finally:
            if size != WIDE:
                self.driver.set_window_size(*WIDE)
        assert target.stat().st_size > 5000, f"{target} is blank"
        return target

    def times_localised(self) -> int:
        """Every <time> now reads in the reader's zone (UTC on hover); how many there are."""
        times = self.all("time[datetime]")
        for element in times:
            title, shown = element.get_attribute("title"), element.get_attribute("textContent")
            assert title.endswith(" UTC") and shown and shown != title, (title, shown)
        return len(times)


def _stale(element: WebElement) -> bool:
    try:
        element.tag_name  # noqa: B018 — raises once the page it was on is gone
        return False
    except Exception:
        return True


def assert_no_alert(driver: Any) -> None:
    """No script of a page (a hostile title's `<script>` least of all) opened a dialog."""
    try:
        text = driver.switch_to.alert.text
    except NoAlertPresentException:
        return
    raise AssertionError(f"a page opened an alert: {text!r}")


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MEDIAWATCH_SCREENSHOTS") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def reader(crawled: tuple[Cli, Running, str], shots: Path) -> Iterator[Reader]:
    reader = Reader(crawled[2], shots)
    try:
        yield reader
    finally:
        reader.quit()


# ---------------------------------------------------------------- the test

def test_an_analyst_reads_a_story_its_evidence_and_marks_it_reviewed(
        crawled: tuple[Cli, Running, str], reader: Reader) -> None:
    cli, _, _ = crawled
    stored = articles(cli)
    statement = stored["statements/warning-students.html"]
    coverage = stored["coverage/2026/11/students-subverted.html"]
    story = statement["story_id"]
    assert coverage["story_id"] == story  # the English report follows the statement

    # signed out: every page sends to the sign-in form, which takes the token
    reader.open("/")
    assert reader.path.startswith("/signin"), reader.path
    reader.one("form#signin input[name=token]").send_keys(TOKEN)
    reader.submit(reader.one("form#signin button[type=submit]"))
    assert reader.path == "/", reader.path

    # Today: a section per topic, the statement's story in it; sources needing attention
    for link in ("/", "/sources", "/alerts", "/query"):
        assert reader.one(f'header nav a[href="{link}"]')
    section = reader.one('section.topic[data-topic="espionage-warnings"]')
    assert reader.one('h2 a[href="/topics/espionage-warnings"]', section)
    assert reader.all(f'a.story[href="/stories/{story}"]', section)
    assert "gone" in reader.one("section.attention").text  # the failing source
    hostile_on_today(reader)
    assert reader.times_localised() > 0
    reader.shoot("today")
    reader.shoot("today-phone", PHONE)

    # the topic: its query, its chart by day, its stories with highlighted snippets
    reader.click(reader.one('h2 a[href="/topics/espionage-warnings"]', section))
    assert reader.path == "/topics/espionage-warnings"
    assert "espionage-warnings" in reader.one("h1").text
    assert "@mss" in reader.one("pre.query").text
    reader.one("svg.bars")
    link = reader.one(f'a.story[href="/stories/{story}"]')
    row = link.find_element(By.XPATH, "ancestor-or-self::*[.//*[contains(@class, 'snippet')]][1]")
    assert reader.all(".snippet mark", row), row.get_attribute("outerHTML")
    reader.shoot("topic")

    # the story: the statement first, the English follow-up after it, copies folded
    reader.click(link)
    assert reader.path == f"/stories/{story}"
    listed = next(s for s in cli("stories", "list", "--json").json() if s["id"] == story)
    assert reader.one("h1").text.strip() == listed["headline"], (listed, reader.one("h1").text)
    reports = reader.all("article.report")
    ids = [r.get_attribute("data-article-id") for r in reports]
    assert ids[0] == str(statement["id"]) and str(coverage["id"]) in ids[1:], ids
    lead = reader.one("article.report.lead")
    assert lead.get_attribute("data-article-id") == str(statement["id"])
    assert "Official statement" in lead.get_attribute("textContent")  # CSS may upper-case it
    copies = reader.one("details.copies > summary", lead).text
    assert "+2 copies" in copies and "Traditional" in copies, copies
    assert reader.one(".triage-state").text.strip() == "unreviewed"
    assert reader.times_localised() >= 2
    reader.shoot("story")

    # the statement's article: its text with the matched spans marked, why it matched
    reader.click(reader.one(f'a.article[href="/articles/{statement["id"]}"]', lead))
    assert reader.path == f"/articles/{statement['id']}"
    marks = [m.text for m in reader.all(".text mark")]
    assert "国家安全部" in marks and "留学生" in marks, marks
    explain = reader.one('.explain[data-topic="espionage-warnings"]')
    assert "国家安全部" in explain.text or "@mss" in explain.text, explain.text
    reader.one('.explain[data-topic="students"]')
    reader.one(".copies")
    reader.one(".sightings")
    assert reader.one("a.original").get_attribute("href") == statement["canonical_url"]
    reader.shoot("article")

    # the workbench: a draft query (aliases work) finds the stored articles, highlighted
    reader.click(reader.one('header nav a[href="/query"]'))
    box = reader.one("form#query textarea[name=q]")
    box.clear()
    box.send_keys("@mss AND 留学生")
    reader.submit(reader.one("form#query button[type=submit], form#query input[type=submit]"))
    assert reader.path.startswith("/query?"), reader.path
    hits = reader.all(".hit")
    assert hits and all(reader.all("mark", hit) for hit in hits)
    assert any("国家安全部" in m.text for m in reader.all(".hit mark"))
    reader.one(".counts")
    reader.shoot("query")
    box = reader.one("form#query textarea[name=q]")
    box.clear()
    box.send_keys("spy AND (")
    reader.submit(reader.one("form#query button[type=submit], form#query input[type=submit]"))
    assert "^" in reader.one(".query-error pre.caret").text
    assert not reader.all(".hit")

    # sources and alerts
    reader.click(reader.one('header nav a[href="/sources"]'))
    for name in ("statements", "coverage", "hostile", "reprints"):
        assert reader.one(f'table.sources tr[data-source="{name}"] .state').text.strip() == "ok"
    assert reader.one('table.sources tr[data-source="gone"] .state').text.strip() == "failing"
    reader.shoot("sources")
    reader.click(reader.one('header nav a[href="/alerts"]'))
    assert reader.all("table.alerts tr[data-alert-id]")
    reader.shoot("alerts")

    # triage: mark the story reviewed; it stays so
    reader.open(f"/stories/{story}")
    reader.submit(reader.one('form.triage button[name=state][value="reviewed"]'))
    assert reader.path.startswith(f"/stories/{story}"), reader.path
    assert reader.one(".triage-state").text.strip() == "reviewed"
    reader.driver.refresh()
    reader.settled()
    assert reader.one(".triage-state").text.strip() == "reviewed"
    assert next(s for s in cli("stories", "list", "--json").json()
                if s["id"] == story)["triage"] == "reviewed"

    # signing out (a POST with the form token too) ends the session
    reader.submit(reader.one("form.signout button[type=submit]"))
    assert reader.path.startswith("/signin"), reader.path
    reader.open(f"/stories/{story}")
    assert reader.path.startswith("/signin"), reader.path

    # nothing the pages did broke their Content-Security-Policy, nor threw
    broken = [entry for entry in reader.console
              if "Content Security Policy" in entry["message"]
              or entry.get("source") in ("security", "javascript")]
    assert not broken, broken


def hostile_on_today(reader: Reader) -> None:
    """The hostile title is shown as text (its `<script>` never ran), its bidi override
    isolated, and nothing on the page links to `javascript:`."""
    shown = [a for a in reader.all("a.story") if "<script>" in a.text]
    assert shown, "the hostile page's story is not on Today"
    assert not reader.all("main script")
    assert shown[0].find_elements(By.CSS_SELECTOR, "bdi") or \
        shown[0].find_elements(By.XPATH, "ancestor::bdi")
    hrefs = [a.get_attribute("href") or "" for a in reader.all("a")]
    assert not [h for h in hrefs if h.lower().startswith("javascript:")], hrefs

