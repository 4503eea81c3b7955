"""Drives the sessrec-web console in headless Chromium (Selenium and chromedriver) as an auditor
and as a non-member, and prints what it saw as one JSON object.

usage: review.py BASE-URL AUDITOR PASSWORD OUTSIDER PASSWORD SESSION-ID EXPECTED-OUTPUT
                 ARTEFACT-DIR PROFILE-DIR JUMP-ENTRY JUMP-SHOWN
JUMP-ENTRY is text of the timeline entry whose jump mark is followed last; the player is then
read once it shows JUMP-SHOWN.
Screenshots of the list, the session page and the player go to ARTEFACT-DIR.
"""
import json
import os
import sys

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException, TimeoutException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

(base, auditor, auditor_pw, outsider, outsider_pw, session, expected,
 artefacts, profile, jump_entry, jump_shown) = sys.argv[1:12]


def browser(profile_dir):
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1400,1000",
                f"--user-data-dir={profile_dir}"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def no_dialog(driver):
    """Whether no alert/confirm/prompt is open (an XSS payload that ran would open one)."""
    try:
        driver.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def log_in(driver, user, password):
    driver.get(base + "login")
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))


result = {}

# A user outside the auditors group is refused, its password correct or not.
driver = browser(profile + "-outsider")
try:
    log_in(driver, outsider, outsider_pw)
    result["outsider_url"] = driver.current_url
    result["outsider_error"] = " ".join(e.text for e in driver.find_elements(By.ID, "login-error"))
    driver.get(base + "sessions")
    result["outsider_list_url"] = driver.current_url
    result["outsider_sees_session"] = session in driver.page_source
finally:
    driver.quit()

driver = browser(profile)
try:
    log_in(driver, auditor, auditor_pw)
    result["auditor_url"] = driver.current_url
    rows = driver.find_elements(By.CSS_SELECTOR, "#sessions tbody tr")
    result["list_rows"] = [r.text for r in rows]
    driver.save_screenshot(os.path.join(artefacts, "list.png"))
    link = driver.find_element(By.CSS_SELECTOR, f"a.session[href='/session?id={session}']")
    link.click()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state=complete]"))
    WebDriverWait(driver, 30).until(
        lambda d: "checking" not in d.find_element(By.ID, "integrity").text)
    result["integrity"] = driver.find_element(By.ID, "integrity").text
    result["timeline"] = [li.text for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li")]
    result["session_dialog_free"] = no_dialog(driver)
    driver.save_screenshot(os.path.join(artefacts, "session.png"))
    driver.find_element(By.CSS_SELECTOR, "a.play").click()
    player = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "player"))
    try:
        WebDriverWait(driver, 60).until(lambda d: expected in player.text or not no_dialog(d))
    except TimeoutException:
        pass
    result["player_dialog_free"] = no_dialog(driver)
    if not result["player_dialog_free"]:
        driver.switch_to.alert.dismiss()
    result["player_text"] = player.text
    # Script the page did not ship (an injected <img onerror>, a <script>) would show here.
    result["injected_elements"] = len(driver.find_elements(
        By.CSS_SELECTOR, "#timeline img, #timeline script, #player img[src='x'], body > img"))
    driver.save_screenshot(os.path.join(artefacts, "player.png"))
    # Back on the session page, a timeline entry's jump mark opens the player at its moment.
    driver.back()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state=complete]"))
    for li in driver.find_elements(By.CSS_SELECTOR, "#timeline li"):
        if jump_entry in li.text:
            link = li.find_element(By.CSS_SELECTOR, "a.jump")
            result["jump_url"] = link.get_attribute("href")
            link.click()
            break
    player = WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, "player"))
    try:
        WebDriverWait(driver, 30).until(lambda d: jump_shown in player.text)
    except TimeoutException:
        pass
    result["jump_text"] = player.text
    # Shown at that moment, not played there: the player waits to be started.
    start = driver.find_elements(By.CSS_SELECTOR, "#player .ap-overlay-start")
    result["jump_waiting_to_play"] = len(start) > 0
    driver.save_screenshot(os.path.join(artefacts, "jump.png"))
    if start:
        start[0].click()
        try:
            WebDriverWait(driver, 30).until(lambda d: expected in player.text)
        except TimeoutException:
            pass
    result["jump_played_on"] = player.text
    result["console"] = [e["message"] for e in driver.get_log("browser")]
finally:
    driver.quit()

print(json.dumps(result))
