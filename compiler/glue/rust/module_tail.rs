
// ---- added by Nimbus below your last line: `Context` in scope, and the entry point.
#[allow(unused_imports)]
use crate::nimbus::prelude::*;
#[doc(hidden)]
pub(crate) fn __nimbus_main() -> ! {
    crate::nimbus::run({handler_fn}, "{handler_fn}", "{user_path}")
}
