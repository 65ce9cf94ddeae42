//! Nimbus handler glue (generated crate, not user code): reads the event from
//! stdin, calls the user's handler, writes its result to the sandbox's result
//! channel, and turns an `Err` or a panic into a function error the sandbox
//! reports as `{type, message, stack}`. The handler's `println!` is its log.
#![allow(dead_code)]

use std::fmt::Display;
use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// What the handler's module sees without importing anything.
pub mod prelude {
    pub use super::Context;
}

/// The invocation's context: who is running and until when.
#[derive(Debug, Clone, Default)]
pub struct Context {
    pub function_name: String,
    pub version: u64,
    pub invocation_id: String,
    /// The deadline as Unix epoch milliseconds.
    pub deadline_ms: u64,
    pub memory_limit_mb: u64,
    /// Everything else: the caller's `X-Nimbus-Context` object.
    pub caller: Map<String, Value>,
}

impl Context {
    /// Milliseconds left before the platform stops this invocation.
    pub fn remaining_ms(&self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        self.deadline_ms.saturating_sub(now)
    }

    /// A value the caller passed in `X-Nimbus-Context`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.caller.get(key)
    }

    fn from_json(value: Value, fallback_name: String) -> Context {
        let mut map = match value {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let text = |map: &mut Map<String, Value>, key: &str| match map.remove(key) {
            Some(Value::String(s)) => Some(s),
            Some(other) => Some(other.to_string()),
            None => None,
        };
        let number = |map: &mut Map<String, Value>, key: &str| {
            map.remove(key).and_then(|v| v.as_u64()).unwrap_or(0)
        };
        Context {
            function_name: text(&mut map, "function_name").unwrap_or(fallback_name),
            invocation_id: text(&mut map, "invocation_id").unwrap_or_default(),
            version: number(&mut map, "version"),
            deadline_ms: number(&mut map, "deadline_ms"),
            memory_limit_mb: number(&mut map, "memory_limit_mb"),
            caller: map,
        }
    }
}

fn read_context() -> Context {
    let name = std::env::args().next().unwrap_or_default();
    let value = std::env::var(CONTEXT_VAR)
        .ok()
        .and_then(|text| serde_json::from_slice(text.as_bytes()).ok())
        .unwrap_or(Value::Null);
    Context::from_json(value, name)
}

// NOTE(glue): how this glue talks to the sandbox (shared with the C and Go
// glue): the context JSON comes in this environment variable; a function
// error is a last line on stderr, an ASCII record separator (0x1e) and a JSON
// object {type, message, stack}, and exit status 1. The result goes to
// RESULT_FD, which the sandbox opens for a module exporting
// `nimbus_result_fd3` (sandbox/_wasi.py); fd 1 then joins the log, so the
// handler's prints can never corrupt the result.
const CONTEXT_VAR: &str = "NIMBUS_CONTEXT";
const ERROR_EXIT: i32 = 1;
const RESULT_FD: i32 = 3;

#[unsafe(export_name = "nimbus_result_fd3")]
pub extern "C" fn nimbus_result_fd3() {}

fn write_result<T: Serialize>(result: &T) -> Result<(), serde_json::Error> {
    use std::os::fd::FromRawFd;
    // SAFETY: RESULT_FD is the sandbox's result channel, open for the whole
    // call; nothing else in the program uses it.
    let channel = unsafe { std::fs::File::from_raw_fd(RESULT_FD) };
    // PERF(glue): serde writes in small pieces; one host call per 64 KiB instead.
    let mut out = std::io::BufWriter::with_capacity(64 * 1024, channel);
    serde_json::to_writer(&mut out, result)?;
    out.flush().map_err(serde_json::Error::io)
}

/// Report a function error and end the program.
fn fail(kind: &str, message: &str, stack: Vec<String>) -> ! {
    let mut record = Map::new();
    record.insert("type".into(), Value::String(kind.into()));
    record.insert("message".into(), Value::String(message.into()));
    record.insert("stack".into(), Value::Array(stack.into_iter().map(Value::String).collect()));
    let record = Value::Object(record);
    let _ = std::io::stdout().flush();
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "\n\x1e{record}"); // Value's Display: no serializer to compile
    let _ = err.flush();
    std::process::exit(ERROR_EXIT)
}

fn panic_message(info: &std::panic::PanicHookInfo<'_>) -> String {
    if let Some(s) = info.payload().downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = info.payload().downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}

/// "Error" for a plain message (`String`, `&str`, a boxed error), else the
/// error type's own name (`ValidationError`).
fn error_type<Er>() -> String {
    let full = std::any::type_name::<Er>();
    let plain = full.split('<').next().unwrap_or(full);
    let last = plain.rsplit("::").next().unwrap_or(plain).trim_start_matches('&');
    match last {
        "" | "String" | "str" | "Box" | "Cow" | "Rc" | "Arc" => "Error".to_string(),
        name => name.to_string(),
    }
}

/// Run the handler once: the whole life of this program.
/// `name` and `file` are the handler's, for the error's stack.
pub fn run<E, T, Er>(
    handler: fn(E, &Context) -> Result<T, Er>,
    name: &'static str,
    file: &'static str,
) -> !
where
    E: DeserializeOwned,
    T: Serialize,
    Er: Display,
{
    std::panic::set_hook(Box::new(move |info| {
        // NOTE(glue): no unwinding on wasm32-wasip1 (panic = abort), so no
        // backtrace: the panic's own location is the frame that matters.
        let mut stack = Vec::new();
        if let Some(loc) = info.location() {
            stack.push(format!("at {}:{}:{}", loc.file(), loc.line(), loc.column()));
        }
        stack.push(format!("in {name} ({file})"));
        fail("Panic", &panic_message(info), stack)
    }));

    let mut input = Vec::new();
    if let Err(err) = std::io::stdin().read_to_end(&mut input) {
        fail("EventError", &format!("cannot read the event: {err}"), vec![]);
    }
    // PERF(glue): one deserializer per event type (from_slice only): each
    // instantiation is compiled, at opt-level 3, in every function's build.
    if input.iter().all(u8::is_ascii_whitespace) {
        input = b"{}".to_vec();
    }
    let event: E = serde_json::from_slice(&input).unwrap_or_else(|err| {
        fail("EventError", &format!("the event does not fit the handler's event type: {err}"), vec![])
    });

    let context = read_context();
    match handler(event, &context) {
        Ok(result) => {
            let _ = std::io::stdout().flush(); // the handler's prints: log, before the result
            if let Err(err) = write_result(&result) {
                fail("ResultError", &format!("the result cannot be written as JSON: {err}"), vec![]);
            }
            std::process::exit(0)
        }
        Err(err) => fail(&error_type::<Er>(), &err.to_string(), vec![format!("at {name} ({file})")]),
    }
}
