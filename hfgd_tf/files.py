"""Writing small files so that a crash never leaves a half-written one under the final name."""

import json
import os


def write_json_atomic(path, content):
    """Writes `content` as indented JSON to `path.incomplete`, then renames it to `path`.

    Returns:
        str: `path`.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    temporary = path + ".incomplete"
    with open(temporary, "w") as handle:
        json.dump(content, handle, indent=2)
    os.replace(temporary, path)
    return path
