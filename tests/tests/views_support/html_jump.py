"""Clicks a timeline entry of a `sessrec export --format html` page in headless Chromium
(Selenium and chromedriver) and prints what the entry's player then shows.

usage: html_jump.py PAGE ENTRY-TEXT PROFILE-DIR GONE-TEXT
Waits (up to 30 s) until the player no longer shows GONE-TEXT (the end of the recording,
which the page shows first), then prints the player's terminal text.
"""
import sys

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

page, entry, profile, gone = sys.argv[1:5]
options = Options()
for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--disable-background-networking", f"--user-data-dir={profile}"):
    options.add_argument(arg)
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
try:
    driver.get("file://" + page)
    player = None
    for li in driver.find_elements(By.CSS_SELECTOR, "ol.timeline li"):
        if entry in li.text:
            link = li.find_element(By.CSS_SELECTOR, "a.jump")
            player = driver.find_element(By.ID, "sessrec-player-" + link.get_attribute("data-player"))
            # The page shows the end first: wait for the player to have drawn it.
            WebDriverWait(driver, 30).until(lambda d: gone in player.text)
            link.click()
            break
    if player is None:
        sys.exit(f"no timeline entry with {entry!r}")
    WebDriverWait(driver, 30).until(lambda d: gone not in player.text)
    print(player.text)
finally:
    driver.quit()
