"""N headless Chromium browsers, each logged in to the sessrec web console and following one
live session for SECONDS. Where the session page offers "follow live" (server-sent events),
the browser opens it once and watches the player; otherwise it opens the channel's player
again every RELOAD seconds to fetch the newest output. Prints one JSON object per browser:
how it followed, the pages loaded, and whether new output appeared in the player while it
watched.

usage: follow.py BASE-URL USER PASSWORD SECONDS RELOAD PROFILE-PREFIX PHASE-FILE SESSION-ID...
PHASE-FILE is created when every browser has logged in and following starts.
"""
import json
import re
import sys
import threading
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

base, user, password, seconds, reload_s, profile, phase_file = sys.argv[1:8]
sessions = sys.argv[8:]
seconds, reload_s = float(seconds), float(reload_s)
results = [None] * len(sessions)
start_together = threading.Barrier(len(sessions))
TICK = re.compile(r"tick-(\d+)")


def newest_tick(text):
    ticks = [int(t) for t in TICK.findall(text)]
    return max(ticks) if ticks else 0


def follow(i, session):
    out = {"session": session, "mode": None, "loads": 0, "saw_output": False, "error": None}
    driver = None
    try:
        options = Options()
        for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                    "--disable-background-networking", "--window-size=1000,700",
                    f"--user-data-dir={profile}-{i}"):
            options.add_argument(arg)
        driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        driver.get(base + "/login")
        driver.find_element(By.ID, "user").send_keys(user)
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "submit").click()
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.ID, "sessions"))
        driver.get(f"{base}/session?id={session}")
        WebDriverWait(driver, 120).until(lambda d: d.find_elements(By.ID, "timeline"))
        links = driver.find_elements(By.CSS_SELECTOR, "a.follow")
        live = links[0].get_attribute("href") if links else None
        out["mode"] = "follow" if live else "reload"
        if start_together.wait(timeout=600) == 0:
            open(phase_file, "w").close()
        end = time.time() + seconds
        first_seen = None
        while time.time() < end:
            if live is None or out["loads"] == 0:
                driver.get(live or f"{base}/play?id={session}&file=channel-1.jsonl")
                out["loads"] += 1
            player = WebDriverWait(driver, 60).until(lambda d: d.find_element(By.ID, "player"))
            tick = newest_tick(player.text)
            if tick:
                first_seen = first_seen or tick
                # Output newer than the first seen arrived while this browser watched.
                out["saw_output"] = out["saw_output"] or tick > first_seen
            time.sleep(max(0.0, min(reload_s if live is None else 1.0, end - time.time())))
    except Exception as e:  # reported, not raised: the other browsers go on
        out["error"] = repr(e)
    finally:
        if driver is not None:
            driver.quit()
    results[i] = out


threads = [threading.Thread(target=follow, args=(i, s)) for i, s in enumerate(sessions)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(json.dumps(results))
