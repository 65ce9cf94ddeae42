// Hello, Rust: the handler form. `Context` and `serde_json` are in scope
// without a `use`; stderr is the function's log (stdout carries the result).
// Create with runtime "rust"; invoke with {"name": "Ada"}.
fn handler(event: serde_json::Value, context: &Context) -> Result<serde_json::Value, String> {
    let name = event["name"].as_str().unwrap_or("world");
    eprintln!("greeting {name}");
    Ok(serde_json::json!({
        "message": format!("Hello, {name}!"),
        "function": context.function_name,
    }))
}
