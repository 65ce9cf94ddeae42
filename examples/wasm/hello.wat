;; A WASI command (the program form): the result is what it writes to stdout.
;; Nimbus gives it the event on stdin; this one ignores it and greets.
(module
  (import "wasi_snapshot_preview1" "fd_write"
    (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{\22hello\22: \22world\22}")
  (func (export "_start")
    ;; one iovec at 0: {buf = 16, len = 18}; bytes written go to 8
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const 18))
    (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))))
