;; Refusal fixture: has an entry but no `alloc` export.
(module
  (memory (export "memory") 1 1)
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
)
