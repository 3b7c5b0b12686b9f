"""Headless Chromium (Debian's chromium and chromium-driver) driven by
Selenium, for the dashboard tier.

The driver is Debian's /usr/bin/chromedriver, named explicitly (Selenium
Manager never runs: nothing is downloaded); the browser runs with a fresh
profile (--user-data-dir in the test's directory) and without anything
that reaches out of the machine.  chromedriver and its Chromium are
stopped by their PIDs (driver.quit, then the driver service's process).
"""

import os

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
         "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--window-size=1280,900")


def missing():
    """Why the browser cannot run here, or None."""
    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.access(path, os.X_OK):
            return (f"no {path} (Debian packages chromium, "
                    f"chromium-driver)")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (the test extra)"
    return None


def start(workdir):
    """A Selenium Chrome driver on headless Chromium, its profile and its
    driver's log under ``workdir``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = os.path.join(str(workdir), "chromium-profile")
    os.makedirs(profile, exist_ok=True)
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    service = Service(executable_path=CHROMEDRIVER,
                      log_output=os.path.join(str(workdir),
                                              "chromedriver.log"))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(120)
    return driver


def stop(driver):
    """Quit the browser, then make sure chromedriver is gone by its PID."""
    process = getattr(driver.service, "process", None)
    try:
        driver.quit()
    finally:
        if process is not None and process.poll() is None:
            process.kill()
            process.wait()
