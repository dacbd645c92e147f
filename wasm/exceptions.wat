;; Uses exception handling (try/catch/throw): refused as feature 'exceptions', which the fuel
;; and call-depth instrumentation cannot follow (a throw unwinds past the depth epilogues).
(module
  (memory (export "memory") 1 1)
  (tag $e)
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "boom") (param $ptr i32) (param $len i32) (result i64)
    (try (result i64)
      (do (throw $e))
      (catch $e (i64.const 0))))
)
