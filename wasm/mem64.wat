;; Refusal fixture: a 64-bit memory (memory64 proposal).
(module
  (memory (export "memory") i64 1 2)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
)
