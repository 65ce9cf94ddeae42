;; A component exporting the `handler` world (wit/handler.wit):
;;   handle: func(event: string, context: string) -> result<string, error-info>
;; It returns the event unchanged. Components are called, not run: no stdin or stdout.
(component
  (core module $m
    (memory (export "memory") 1)
    (global $heap (mut i32) (i32.const 1024))
    ;; the canonical ABI's allocator: a bump allocator is enough for one call
    (func (export "realloc") (param i32 i32 i32 i32) (result i32)
      (local $p i32)
      (if (i32.gt_u (i32.add (global.get $heap) (local.get 3))
                    (i32.mul (memory.size) (i32.const 65536)))
        (then (drop (memory.grow (i32.add (i32.shr_u (local.get 3) (i32.const 16))
                                          (i32.const 1))))))
      (local.set $p (global.get $heap))
      (global.set $heap (i32.add (global.get $heap) (local.get 3)))
      (local.get $p))
    ;; result<string, …> at 16: tag 0 (ok), then the string's pointer and length
    (func (export "handle") (param $ev i32) (param $evlen i32) (param $ctx i32) (param $ctxlen i32)
      (result i32)
      (i32.store8 (i32.const 16) (i32.const 0))
      (i32.store (i32.const 20) (local.get $ev))
      (i32.store (i32.const 24) (local.get $evlen))
      (i32.const 16)))
  (core instance $i (instantiate $m))
  (type $err (record (field "type" string) (field "message" string) (field "stack" string)))
  (export $e "error-info" (type $err))
  (func $h (param "event" string) (param "context" string) (result (result string (error $e)))
    (canon lift (core func $i "handle") (memory (core memory $i "memory"))
      (realloc (core func $i "realloc")) string-encoding=utf8))
  (export "handle" (func $h)))
