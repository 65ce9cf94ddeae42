"""Word statistics for a text: a Nimbus Python function in two modules.

Deploy both files as `files` with the settings in function.json:
POST /api/v1/functions {"name": "wordstats", "runtime": "python",
"files": {"handler.py": ..., "text_tools.py": ...}}; then invoke with
{"text": "..."}. tests/e2e/test_runtime_python.py deploys it this way.
"""

import statistics
from collections import Counter

from text_tools import words


def main(event, context):
    found = words(event.get("text", ""))
    if not found:
        raise ValueError("the event needs a non-empty `text`")
    lengths = [len(w) for w in found]
    return {
        "words": len(found),
        "top": Counter(found).most_common(3),
        "mean_length": round(statistics.mean(lengths), 2),
        "function": context["function_name"],
    }
