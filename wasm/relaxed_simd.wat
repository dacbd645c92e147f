;; Uses a relaxed-SIMD instruction (results are implementation-defined): refused unless the
;; sandbox opts in with determinism flag 'allow-relaxed-simd'.
(module
  (memory (export "memory") 1 1)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "madd") (param $ptr i32) (param $len i32) (result i64)
    (v128.store (local.get $ptr)
      (f32x4.relaxed_madd (v128.load (local.get $ptr)) (v128.load (local.get $ptr)) (v128.load (local.get $ptr))))
    (i64.extend_i32_u (i32.const 16)))
)
