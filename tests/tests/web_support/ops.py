"""Drives the sessrec-web console in headless Chromium (Selenium and chromedriver) for the
operations tests and prints what it saw as one JSON object.

usage: ops.py MODE PROFILE-DIR ARTEFACT-DIR BASE-URL ARGS...
  tls SPKI USER PASSWORD    log in over TLS, the certificate pinned by its SPKI hash
  proxy HEADER USER         open the list with HEADER: USER added to every request
  kill AUDITOR PW KILLER PW SESSION MESSAGE
                            the auditor's session page (no kill form), then the killer ends
                            the session with MESSAGE
  download USER PW SESSION DIR
                            every download link of the session page, saved into DIR
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

mode, profile, artefacts, base = sys.argv[1:5]
args = sys.argv[5:]


def browser(extra=()):
    options = Options()
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-background-networking", "--window-size=1400,1000",
                f"--user-data-dir={profile}", *extra):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def wait_page(driver):
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.TAG_NAME, "h1"))


def log_in(driver, user, password):
    driver.get(base + "/login")
    wait_page(driver)
    driver.find_element(By.ID, "user").send_keys(user)
    driver.find_element(By.ID, "password").send_keys(password)
    driver.find_element(By.ID, "submit").click()
    WebDriverWait(driver, 30).until(lambda d: "/login" not in d.current_url
                                    or d.find_elements(By.ID, "login-error"))
    wait_page(driver)


def page_facts(driver):
    return {
        "url": driver.current_url,
        "h1": " ".join(e.text for e in driver.find_elements(By.TAG_NAME, "h1")),
        "who": " ".join(e.text for e in driver.find_elements(By.CSS_SELECTOR, "nav .who")),
    }


result = {}
if mode == "tls":
    spki, user, password = args
    driver = browser([f"--ignore-certificate-errors-spki-list={spki}"])
    try:
        log_in(driver, user, password)
        result.update(page_facts(driver))
        # The session cookie is HttpOnly: page script cannot read it.
        result["script_cookies"] = driver.execute_script("return document.cookie")
        result["secure_context"] = driver.execute_script("return window.isSecureContext")
        result["protocol"] = driver.execute_script("return location.protocol")
        result["cookies"] = driver.get_cookies()
        driver.save_screenshot(os.path.join(artefacts, "tls-list.png"))
    finally:
        driver.quit()
elif mode == "proxy":
    header, user = args
    driver = browser()
    try:
        driver.execute_cdp_cmd("Network.enable", {})
        driver.execute_cdp_cmd("Network.setExtraHTTPHeaders", {"headers": {header: user}})
        driver.get(base + "/sessions")
        wait_page(driver)
        result.update(page_facts(driver))
        driver.save_screenshot(os.path.join(artefacts, "proxy.png"))
    finally:
        driver.quit()
elif mode == "kill":
    auditor, auditor_pw, killer, killer_pw, session, message = args
    driver = browser()
    try:
        log_in(driver, auditor, auditor_pw)
        driver.get(base + "/session?id=" + session)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state=complete]"))
        result["auditor_kill_form"] = len(driver.find_elements(By.ID, "kill")) > 0
        result["auditor_state"] = driver.find_element(By.TAG_NAME, "dl").text
    finally:
        driver.quit()
    profile = profile + "-killer"
    driver = browser()
    try:
        log_in(driver, killer, killer_pw)
        driver.get(base + "/session?id=" + session)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state=complete]"))
        result["killer_kill_form"] = len(driver.find_elements(By.ID, "kill")) > 0
        driver.save_screenshot(os.path.join(artefacts, "kill-form.png"))
        driver.find_element(By.ID, "kill-message").send_keys(message)
        # Without the confirmation ticked the browser does not send the form.
        driver.find_element(By.ID, "kill-submit").click()
        result["unconfirmed_stays"] = len(driver.find_elements(By.ID, "kill")) > 0 and \
            "/session" in driver.current_url
        driver.find_element(By.ID, "kill-confirm").click()
        driver.find_element(By.ID, "kill-submit").click()
        WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "killed"))
        result["killed"] = driver.find_element(By.ID, "killed").text
        result["kill_error"] = " ".join(e.text for e in driver.find_elements(By.ID, "kill-error"))
        result["kill_url"] = driver.current_url
        driver.save_screenshot(os.path.join(artefacts, "killed.png"))
        driver.find_element(By.ID, "back").click()
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#timeline[data-state=complete]"))
        result["after_state"] = driver.find_element(By.TAG_NAME, "dl").text
        result["after_kill_form"] = len(driver.find_elements(By.ID, "kill")) > 0
    finally:
        driver.quit()
elif mode == "download":
    user, password, session, target = args
    driver = browser()
    try:
        driver.execute_cdp_cmd("Browser.setDownloadBehavior",
                               {"behavior": "allow", "downloadPath": target})
        log_in(driver, user, password)
        driver.get(base + "/session?id=" + session)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "downloads"))
        links = driver.find_elements(By.CSS_SELECTOR, "#downloads a.download")
        result["links"] = [{"format": a.get_attribute("data-format"), "text": a.text,
                            "href": a.get_attribute("href")} for a in links]
        driver.save_screenshot(os.path.join(artefacts, "downloads.png"))
        for a in links:
            a.click()
        # Every link saved as a whole file (Chromium writes .crdownload files until done).
        deadline = time.time() + 60
        while time.time() < deadline:
            names = os.listdir(target)
            if len(names) >= len(links) and not any(n.endswith(".crdownload") for n in names):
                break
            time.sleep(0.2)
        result["files"] = sorted(os.listdir(target))
        result["url_after"] = driver.current_url
    finally:
        driver.quit()
else:
    sys.exit(f"unknown mode {mode}")

print(json.dumps(result))
