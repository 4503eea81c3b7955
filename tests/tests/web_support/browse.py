"""Drives the sessrec-web console's review pages in headless Chromium (Selenium and
chromedriver) and prints what it saw as one JSON object on its last line.

usage: browse.py SPEC-JSON
SPEC "mode" is "review" (list filters and pages, search and its hit in the player, session
pages), "timeline" (a session page whose timeline comes in parts), "refresh" (an open
list page shows a session that starts, as live and then closed: prints READY once open and
SEEN once the live row is there) or "live" (a live session found in the list and followed in the player: prints READY
once following, then waits for SPEC "marker" to show up). Every page visited is checked for
dialogs and for elements the console did not ship (an XSS payload that ran or was parsed as
markup). Screenshots go to SPEC "artefacts".
"""
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import (NoAlertPresentException, StaleElementReferenceException,
                                        TimeoutException, WebDriverException)
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

spec = json.loads(sys.argv[1])
base = spec["base"]
result = {"inert": {}}

# Elements no console page ships: images with the payloads' src, and scripts that are not the
# console's own files.
INJECTED = """
return document.querySelectorAll('img[src="x"]').length
  + Array.from(document.scripts).filter(function (s) {
      return !s.src || s.src.indexOf(location.origin + '/static/') !== 0;
    }).length;
"""
# The player's own current time (seconds), once its recording is loaded.
PLAYER_TIME = """
var done = arguments[arguments.length - 1];
if (!window.sessrecPlayer) { done(-1); return; }
Promise.resolve(window.sessrecPlayer.getCurrentTime()).then(done, function () { done(-1); });
"""


def browser():
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1400,1000",
                "--user-data-dir=" + spec["profile"]):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def dialog_open(driver):
    try:
        driver.switch_to.alert
        return True
    except NoAlertPresentException:
        return False


def inert(driver, name):
    """Records whether the page opened a dialog or holds injected elements."""
    dialog = dialog_open(driver)
    if dialog:
        driver.switch_to.alert.dismiss()
    result["inert"][name] = {"dialog": dialog, "injected": driver.execute_script(INJECTED)}


def shot(driver, name):
    driver.save_screenshot(os.path.join(spec["artefacts"], name))


def wait(driver, what, seconds=30):
    try:
        WebDriverWait(driver, seconds).until(what)
        return True
    except TimeoutException:
        return False


def replaced(old):
    """Whether the page that held `old` is gone; asked again while the browser is between
    pages (when the driver may answer with another error than a stale element)."""
    try:
        old.is_enabled()
        return False
    except StaleElementReferenceException:
        return True
    except WebDriverException:
        return False


def click_to_load(driver, element, marker_id):
    """Clicks something that loads a page, and waits for the new page's marker element."""
    old = driver.find_element(By.TAG_NAME, "html")
    element.click()
    wait(driver, lambda d: replaced(old))
    wait(driver, lambda d: d.find_elements(By.ID, marker_id))
    if marker_id == "timeline":
        # The session page's timeline arrives after the page, in parts.
        wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state=complete]"))


def log_in(driver):
    driver.get(base + "login")
    driver.find_element(By.ID, "user").send_keys(spec["user"])
    driver.find_element(By.ID, "password").send_keys(spec["password"])
    click_to_load(driver, driver.find_element(By.ID, "submit"), "sessions")


def list_state(driver):
    return {
        "url": driver.current_url,
        "count": driver.find_element(By.ID, "count").text,
        "page": driver.find_element(By.ID, "page").text,
        "rows": [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")],
        "links": [a.get_attribute("href")
                  for a in driver.find_elements(By.CSS_SELECTOR, "#sessions a.session")],
    }


def apply_filter(driver, fields=None, checks=(), state=None):
    """The filter form, filled in from a fresh list and sent."""
    driver.get(base + "sessions")
    for field, value in (fields or {}).items():
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)
    for check in checks:
        driver.find_element(By.ID, check).click()
    if state:
        Select(driver.find_element(By.ID, "f-state")).select_by_visible_text(state)
    click_to_load(driver, driver.find_element(By.ID, "f-apply"), "count")


def player_text(driver):
    return driver.find_element(By.ID, "player").text


def review(driver):
    log_in(driver)
    result["list"] = list_state(driver)
    shot(driver, "list.png")
    inert(driver, "list")

    for f in spec["filters"]:
        apply_filter(driver, f.get("fields"), f.get("checks", ()))
        result[f["name"]] = list_state(driver)
        inert(driver, "list-" + f["name"])

    apply_filter(driver, spec["paged"]["fields"])
    first = list_state(driver)
    click_to_load(driver, driver.find_element(By.ID, "older"), "count")
    result["paged"] = {"first": first, "second": list_state(driver)}

    # Search, through the form; the first hit opens the player.
    driver.get(base + "search")
    driver.find_element(By.ID, "s-q").send_keys(spec["search"])
    Select(driver.find_element(By.ID, "s-scope")).select_by_visible_text("output")
    click_to_load(driver, driver.find_element(By.ID, "s-go"), "hits")
    search = {"rows": [r.text for r in driver.find_elements(By.CSS_SELECTOR, "#hits tbody tr")]}
    shot(driver, "search.png")
    inert(driver, "search")
    hit = driver.find_element(By.CSS_SELECTOR, "#hits a.hit")
    search["hit_href"] = hit.get_attribute("href")
    click_to_load(driver, hit, "player")
    wait(driver, lambda d: d.execute_async_script(PLAYER_TIME) > 0)
    search["player_time"] = driver.execute_async_script(PLAYER_TIME)
    wait(driver, lambda d: player_text(d).strip() != "", 10)
    search["player_text"] = player_text(driver)
    # The verdict, asked for by the page after it was shown.
    wait(driver, lambda d: "checking" not in d.find_element(By.ID, "integrity").text)
    search["player_integrity"] = driver.find_element(By.ID, "integrity").text
    shot(driver, "hit.png")
    inert(driver, "player-at-hit")
    result["search"] = search

    # The payloads searched for, shown in the hits' context.
    result["payload_hits"] = []
    for i, payload in enumerate(spec["search_payloads"]):
        driver.get(base + "search")
        driver.find_element(By.ID, "s-q").send_keys(payload)
        click_to_load(driver, driver.find_element(By.ID, "s-go"), "hits")
        result["payload_hits"].append(
            [c.text for c in driver.find_elements(By.CSS_SELECTOR, "#hits td.context")])
        inert(driver, "search-payload-%d" % i)

    result["session"] = []
    for i, session in enumerate(spec["sessions"]):
        driver.get(base + "sessions")
        click_to_load(driver, driver.find_element(
            By.CSS_SELECTOR, "a.session[href='/session?id=%s']" % session), "timeline")
        result["session"].append({"timeline": driver.find_element(By.ID, "timeline").text})
        if i == 0:
            shot(driver, "session.png")
        inert(driver, "session-%d" % i)
        if i == 0:
            # Its player, from the start.
            click_to_load(driver, driver.find_element(By.CSS_SELECTOR, "a.play"), "player")
            wait(driver, lambda d: player_text(d).strip() != "")
            inert(driver, "player")


def live(driver):
    log_in(driver)
    apply_filter(driver, state="live")
    result["live_rows"] = list_state(driver)["rows"]
    inert(driver, "list-live")
    link = driver.find_element(
        By.CSS_SELECTOR, "a.session[href='/session?id=%s']" % spec["session"])
    click_to_load(driver, link, "timeline")
    inert(driver, "session")
    click_to_load(driver, driver.find_element(By.CSS_SELECTOR, "a.follow"), "player")
    wait(driver, lambda d: spec["ready"] in player_text(d))
    print("READY", flush=True)
    wait(driver, lambda d: spec["marker"] in player_text(d), 60)
    result["followed_text"] = player_text(driver)
    shot(driver, "live.png")
    inert(driver, "follow")
    # Requests that name files by path, or files without I/O, find nothing.
    probes = {}
    for path in ("follow?id=%s&file=..%%2Fsession.jsonl" % spec["session"],
                 "follow?id=..%2F..%2F..%2Fetc&file=passwd",
                 "follow?id=%s&file=session.jsonl" % spec["session"],
                 "cast?id=%s&file=%%2Fetc%%2Fpasswd&from=1" % spec["session"]):
        probes[path] = driver.execute_async_script(
            "var done = arguments[arguments.length - 1];"
            "fetch(arguments[0]).then(function (r) { done(r.status); }, function () { done(-1); });",
            base + path)
    result["probes"] = probes


def timeline(driver):
    """A session page whose timeline comes in parts: every entry, its jump marks, one followed."""
    log_in(driver)
    driver.get(base + "session?id=" + spec["session"])
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state]"), 120)
    ol = driver.find_element(By.ID, "timeline")
    result["state"] = ol.get_attribute("data-state")
    result["parts"] = ol.get_attribute("data-parts")
    result["status"] = driver.find_element(By.ID, "timeline-status").text
    result["entries"] = driver.execute_script(
        "return Array.from(document.querySelectorAll('#timeline li')).map(function (li) {"
        " var a = li.querySelector('a.jump');"
        " return [li.textContent, a ? a.getAttribute('href') : null]; });")
    inert(driver, "session")
    shot(driver, "long-timeline.png")
    for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li"):
        if spec["jump"] in li.text:
            click_to_load(driver, li.find_element(By.CSS_SELECTOR, "a.jump"), "player")
            result["jump_url"] = driver.current_url
            wait(driver, lambda d: spec["shown"] in player_text(d))
            result["jump_text"] = player_text(driver)
            break


PLAYER_DURATION = """
var done = arguments[arguments.length - 1];
if (!window.sessrecPlayer) { done(-1); return; }
Promise.resolve(window.sessrecPlayer.getDuration()).then(done, function () { done(-1); });
"""


def seek(driver):
    """A recording longer than one piece: the player spans it all, and a seek to its last
    moments fetches the piece there."""
    log_in(driver)
    driver.get(base + "play?id=%s&file=channel-1.jsonl" % spec["session"])
    player = driver.find_element(By.ID, "player")
    wait(driver, lambda d: player.get_attribute("data-next") not in (None, ""), 60)
    wait(driver, lambda d: (d.execute_async_script(PLAYER_DURATION) or 0) > 0, 60)
    result["next"] = player.get_attribute("data-next")
    result["duration_header"] = player.get_attribute("data-duration")
    result["duration"] = driver.execute_async_script(PLAYER_DURATION)
    driver.execute_script("window.sessrecPlayer.pause();")
    driver.execute_script("window.sessrecPlayer.seek(arguments[0]);", result["duration"])
    wait(driver, lambda d: spec["marker"] in player_text(d), 60)
    result["from"] = driver.find_element(By.ID, "player").get_attribute("data-from")
    result["text"] = player_text(driver)
    result["time"] = driver.execute_async_script(PLAYER_TIME)
    shot(driver, "sought.png")
    inert(driver, "sought")


STATE_OF = """
var a = document.querySelector('#sessions a.session[href="/session?id=' + arguments[0] + '"]');
return a ? a.closest('tr').querySelector('td.state').textContent : null;
"""


def refresh(driver):
    """A list page left open: a session that starts meanwhile appears as live, then closed."""
    log_in(driver)
    apply_filter(driver, fields={"f-user": spec["user_filter"]})
    # Gone if the page is loaded again.
    driver.execute_script("window.sessrecOpened = 'once';")
    result["before"] = list_state(driver)
    print("READY", flush=True)
    wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#sessions a.session"), 90)
    result["appeared"] = list_state(driver)
    session = result["appeared"]["links"][0].split("id=", 1)[1] if result["appeared"]["links"] else ""
    result["session"] = session
    result["first_state"] = driver.execute_script(STATE_OF, session)
    shot(driver, "refreshed-live.png")
    print("SEEN", flush=True)
    wait(driver, lambda d: d.execute_script(STATE_OF, session) == "closed", 90)
    result["last_state"] = driver.execute_script(STATE_OF, session)
    result["after"] = list_state(driver)
    result["filter_value"] = driver.find_element(By.ID, "f-user").get_attribute("value")
    result["same_document"] = driver.execute_script("return window.sessrecOpened || null;")
    result["refreshes"] = driver.find_element(By.ID, "sessions").get_attribute("data-refreshes")
    result["refresh_status"] = driver.find_element(By.ID, "refresh-status").text
    inert(driver, "refreshed-list")
    shot(driver, "refreshed-closed.png")


driver = browser()
try:
    if spec["mode"] == "review":
        review(driver)
    elif spec["mode"] == "timeline":
        timeline(driver)
    elif spec["mode"] == "refresh":
        refresh(driver)
    elif spec["mode"] == "seek":
        seek(driver)
    else:
        live(driver)
    result["console"] = [e["message"] for e in driver.get_log("browser")]
finally:
    driver.quit()
    if spec["mode"] in ("live", "refresh") and "followed_text" not in result \
            and "last_state" not in result:
        # Never leave the test waiting for READY.
        print("READY", flush=True)

print(json.dumps(result))
