;; Refusal fixture: imports its linear memory instead of defining it.
(module
  (import "env" "memory" (memory 1 2))
  (export "memory" (memory 0))
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
)
