# Horizon's local_settings for the dashboard tier.  tools/horizon-venv.sh
# copies this file to openstack_dashboard/local/local_settings.py in the
# Horizon virtualenv (and mistral-dashboard's enabled/_50_mistral.py to
# openstack_dashboard/local/enabled/, as its documentation says); the
# test's Horizon (tests/dashboard/horizon.py) sets the environment below.
# It runs in that virtualenv only: it imports nothing of instance-ha.
import os
import secrets
import sys

DEBUG = False
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
WEBROOT = '/'
TIME_ZONE = 'UTC'

# The test Keystone (HORIZON_KEYSTONE_URL: its /v3 address).
OPENSTACK_KEYSTONE_URL = os.environ.get('HORIZON_KEYSTONE_URL',
                                        'http://127.0.0.1:5000/v3')
OPENSTACK_KEYSTONE_DEFAULT_ROLE = 'member'
OPENSTACK_SSL_NO_VERIFY = True
# After the login: Mistral's executions, not the project overview (which
# asks Nova for limits and usage the simulated cloud does not serve).
LOGIN_REDIRECT_URL = '/mistral/executions/'

# No memcached: sessions in files under the test's state directory, a
# per-process cache.
_STATE = os.environ.get('HORIZON_STATE_DIR')
if _STATE:
    SESSION_ENGINE = 'django.contrib.sessions.backends.file'
    SESSION_FILE_PATH = os.path.join(_STATE, 'sessions')
    os.makedirs(SESSION_FILE_PATH, exist_ok=True)
else:
    # collectstatic / compress: no session is ever made.
    SESSION_ENGINE = 'django.contrib.sessions.backends.signed_cookies'
CACHES = {
    'default': {'BACKEND': 'django.core.cache.backends.locmem.LocMemCache'},
}
# One key per Horizon process (a test session's): nothing outlives it.
SECRET_KEY = os.environ.get('HORIZON_SECRET_KEY') or secrets.token_hex(32)

# Static files collected and compressed once, when the virtualenv is built
# (django-admin collectstatic, compress), into the virtualenv.
STATIC_ROOT = os.environ.get('HORIZON_STATIC_ROOT') or os.path.join(
    sys.prefix, 'horizon-static')
COMPRESS_OFFLINE = True

LOGGING = {
    'version': 1,
    'disable_existing_loggers': False,
    'handlers': {'console': {'class': 'logging.StreamHandler'}},
    'root': {'handlers': ['console'], 'level': 'WARNING'},
}
