;; Atomic instructions on an unshared memory (threads proposal): refused as feature 'threads'.
(module
  (memory (export "memory") 1 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "add") (param $ptr i32) (param $len i32) (result i64)
    (drop (i32.atomic.rmw.add (local.get $ptr) (i32.const 1)))
    (i64.const 0))
)
