"""The monitors' records on disk: one JSON file each, written whole to a
temporary file and renamed over the old one, so that a crash mid-write
leaves the old record or the new, never half of one."""

import json
import os
import tempfile


class RecordError(Exception):
    """A record file cannot be read."""


def load(path, what):
    """The record at ``path`` (a dict), {} when there is none yet."""
    try:
        with open(path, encoding="utf-8") as stream:
            data = json.load(stream)
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise RecordError(f"{path}: unreadable {what} ({exc}); move it "
                          "away to start a new one") from exc
    if not isinstance(data, dict):
        raise RecordError(f"{path}: not {what}; move it away to start a "
                          "new one")
    return data


def save(path, data):
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".record.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=1, sort_keys=True)
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
