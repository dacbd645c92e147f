;; Refusal fixture: a shared memory (threads proposal).
(module
  (memory (export "memory") 1 2 shared)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
)
