"""What `nimbus init` writes: the smallest working function per runtime, in the handler
form each runtime documents (README, "Handler conventions"). tests/e2e/test_cli_init.py
deploys and invokes every one against a real server.

NOTE: close to examples/*/hello.*, on purpose: a client-only `pip install nimbus` has no
examples/ folder, so the CLI carries its own (shorter) copies."""

from __future__ import annotations

PYTHON = '''\
def main(event, context):
    """The event is the JSON the caller sent; the result is returned as JSON."""
    name = event.get("name", "world") if isinstance(event, dict) else "world"
    print(f"greeting {name}")  # what a function prints is its log
    return {"message": f"Hello, {name}!", "function": context["function_name"]}
'''

JAVASCRIPT = """\
export function main(event, context) {
  const name = (event && event.name) || "world";
  console.log(`greeting ${name}`); // the function's log
  return { message: `Hello, ${name}!`, function: context.function_name };
}
"""

GO = """\
// No package clause or func main needed: Nimbus adds them.
import (
\t"fmt"
\t"os"
)

func handler(event interface{}, context map[string]string) interface{} {
\tname := "world"
\tif fields, ok := event.(map[string]interface{}); ok {
\t\tif given, ok := fields["name"].(string); ok {
\t\t\tname = given
\t\t}
\t}
\tfmt.Fprintf(os.Stderr, "greeting %s\\n", name) // stderr is the function's log
\treturn map[string]interface{}{
\t\t"message":  "Hello, " + name + "!",
\t\t"function": context["function_name"],
\t}
}
"""

RUST = """\
// `Context` and `serde_json` are in scope; stderr is the function's log.
fn handler(event: serde_json::Value, context: &Context) -> Result<serde_json::Value, String> {
    let name = event["name"].as_str().unwrap_or("world");
    eprintln!("greeting {name}");
    Ok(serde_json::json!({
        "message": format!("Hello, {name}!"),
        "function": context.function_name,
    }))
}
"""

C = """\
// nimbus.h is included for you: JSON parsing and a string builder.
#include <stdio.h>
#include <stdlib.h>

char *handler(const char *event_json, const char *context_json) {
    nimbus_json *event = nimbus_json_parse(event_json);
    const char *name = nimbus_json_string(nimbus_json_get(event, "name"), "world");
    fprintf(stderr, "greeting %s\\n", name);  // stderr is the function's log
    nimbus_buf message = {0};
    nimbus_buf_printf(&message, "Hello, %s!", name);
    char *text = nimbus_buf_finish(&message);
    nimbus_buf out = {0};
    nimbus_buf_puts(&out, "{\\"message\\":");
    nimbus_buf_json_string(&out, text);  // quoted and escaped
    nimbus_buf_puts(&out, "}");
    free(text);
    nimbus_json_free(event);
    return nimbus_buf_finish(&out);  // malloc'd: Nimbus frees it
}
"""

TEMPLATES: dict[str, dict[str, str]] = {
    "python": {"handler.py": PYTHON},
    "javascript": {"handler.js": JAVASCRIPT},
    "go": {"handler.go": GO},
    "rust": {"handler.rs": RUST},
    "c": {"handler.c": C},
}
