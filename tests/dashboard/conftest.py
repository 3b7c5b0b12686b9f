"""Session fixtures of the dashboard tier: the keystone tier's real
Keystone 30, simulated cloud taking its tokens and Keystone-authenticated
embedded Mistral (tests/keystone/conftest.py: ``keystone``, ``sim``,
``auth_mistral``, the same fixtures, not a copy), one Horizon 27 with
mistral-dashboard 23 against them (horizon_process.py, its own
virtualenv: tools/horizon-venv.sh), one headless Chromium logged in to
Horizon as the admin user (browser.py), and one host recovery run on that
Mistral as the admin user.

A missing virtualenv (Horizon's, Keystone's) or browser fails every test
with one line saying so; DASHBOARD_SKIP_MISSING=1 makes it a skip."""

import importlib.util
import os

import browser
import horizon_process
import keystone_support
import pytest

_spec = importlib.util.spec_from_file_location(
    "keystone_tier_conftest",
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(
        __file__))), "keystone", "conftest.py"))
_keystone_tier = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_keystone_tier)
sim = _keystone_tier.sim
auth_mistral = _keystone_tier.auth_mistral

HOST = "compute1"
# VMs of the recovery: moved, and one whose rebuild fails on its new host.
MOVED = ("web-1", "web-2", "db-1")
FAILED = "cache-1"


def _missing(reason):
    if os.environ.get("DASHBOARD_SKIP_MISSING") == "1":
        pytest.skip(reason)
    pytest.fail(reason, pytrace=False)


@pytest.fixture(scope="session")
def keystone(tmp_path_factory):
    """The keystone tier's Keystone (its token expiration too)."""
    missing = horizon_process.venv_missing() or browser.missing()
    if missing:
        _missing(missing)
    yield from keystone_support.keystone_fixture(
        tmp_path_factory, _missing, _missing,
        token_expiration=_keystone_tier.TOKEN_EXPIRATION)


@pytest.fixture(scope="session")
def horizon(keystone, auth_mistral, tmp_path_factory):
    """One Horizon for the session, against the session's Keystone (which
    has Mistral in its catalog as workflowv2); stopped by its PID."""
    server = horizon_process.Horizon(tmp_path_factory.mktemp("horizon"),
                                     keystone.url)
    try:
        server.start()
        yield server
    finally:
        server.stop(timeout=20)
        server.kill()


@pytest.fixture(scope="session")
def recovery(auth_mistral):
    """One host recovery of HOST as the admin user: the VMs of MOVED
    moved, FAILED not recovered (its rebuild fails on the destination):
    (execution, decoded output)."""
    servers = {}
    for name in (*MOVED, FAILED):
        server = auth_mistral.sim.cloud.add_server(
            name, HOST, metadata=_keystone_tier.HA,
            project_id=auth_mistral.keystone.projects["demo"])
        servers[name] = server
    auth_mistral.sim.cloud.faults.add("evacuate", server=servers[FAILED].id,
                                      outcome="error")
    auth_mistral.fail_host(HOST)
    client = auth_mistral.client("admin")
    execution = client.executions.create(
        "instance_ha.host_evacuate",
        workflow_input={"search_opts": {"host": HOST}},
        description=f"evacuate {HOST} (manual: instance-ha evacuate)")
    return auth_mistral.run(client, None, None, execution=execution)


@pytest.fixture(scope="session")
def dashboard(horizon, keystone, tmp_path_factory):
    """A headless Chromium logged in to Horizon as the admin user (the
    password typed into the login form: it is in no argv and no log;
    chromedriver logs warnings only)."""
    from selenium.webdriver.common.by import By

    workdir = tmp_path_factory.mktemp("chromium")
    driver = browser.start(workdir)
    try:
        session = browser.Dashboard(driver, horizon.url)
        driver.get(horizon.url + "/auth/login/")
        driver.find_element(By.ID, "id_username").send_keys("admin")
        driver.find_element(By.ID, "id_password").send_keys(
            keystone.passwords["admin"])
        driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        session.wait_for(lambda: "/auth/login" not in driver.current_url,
                         "the login to finish")
        yield session
    finally:
        browser.stop(driver)
