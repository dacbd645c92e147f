;; Imports env.abort(msg, file, line, col), AssemblyScript's abort, which the host provides
;; when the sandbox allows "env.abort". Strings are AssemblyScript-style: UTF-16LE data at the
;; pointer, its byte length as a u32 just before it.
(module
  (import "env" "abort" (func $abort (param i32 i32 i32 i32)))
  (memory (export "memory") 1 1)
  ;; "hello" at 20 (length 10 bytes at 16); "guest.ts" at 52 (length 16 bytes at 48)
  (data (i32.const 16) "\0a\00\00\00h\00e\00l\00l\00o\00")
  (data (i32.const 48) "\10\00\00\00g\00u\00e\00s\00t\00.\00t\00s\00")
  (func (export "alloc") (param i32) (result i32) (i32.const 1024))
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32)) (i64.extend_i32_u (local.get $len))))
  (func (export "boom") (param $ptr i32) (param $len i32) (result i64)
    (call $abort (i32.const 20) (i32.const 52) (i32.const 42) (i32.const 7))
    unreachable)
)
