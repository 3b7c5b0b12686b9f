"""The pack's mistral-lib actions, one small class per action.

Each is registered under the ``mistral.actions`` entry point group in
pyproject.toml, so stock Mistral's legacy action provider loads it by name.
"""
