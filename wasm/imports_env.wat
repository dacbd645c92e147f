;; Refusal fixture: imports a host function that is not on any allow-list (a clock would make
;; results depend on when they ran).
(module
  (import "env" "get_time" (func $get_time (result i64)))
  (memory (export "memory") 1 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "now") (param $ptr i32) (param $len i32) (result i64)
    (call $get_time))
)
