;; A WASI command in WAT that calls preview 1 functions directly, for the calls libc never
;; makes or makes only with good arguments. stdout = one byte per call, the errno it got:
;;   [0] sock_accept(0, 0, 0)          [1] sock_send(1, 0, 0, 0, 0)   [2] sock_recv(0, ...)
;;   [3] sock_shutdown(1, 0)           [4] fd_write to stdout with an iovec outside memory
;;   [5] fd_write to fd 3              [6] path_open on fd 3 (read-only, "x")
;;   [7] proc_raise(9)                 [8] clock_time_get with an unknown clock id
;;   [9] fd_prestat_get(3)
(module
  (import "wasi_snapshot_preview1" "sock_accept" (func $sock_accept (param i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_send" (func $sock_send (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_recv" (func $sock_recv (param i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "sock_shutdown" (func $sock_shutdown (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "path_open"
    (func $path_open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_raise" (func $proc_raise (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_prestat_get" (func $fd_prestat_get (param i32 i32) (result i32)))
  (memory (export "memory") 1 1)
  ;; 0: results (10 bytes); 16: iovec -> results; 32: bad iovec; 48: "x"; 64: scratch
  (data (i32.const 32) "\f0\ff\ff\ff\01\00\00\00")
  (data (i32.const 48) "x")
  (func (export "_start")
    (i32.store8 (i32.const 0) (call $sock_accept (i32.const 0) (i32.const 0) (i32.const 64)))
    (i32.store8 (i32.const 1) (call $sock_send (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64)))
    (i32.store8 (i32.const 2)
      (call $sock_recv (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 68)))
    (i32.store8 (i32.const 3) (call $sock_shutdown (i32.const 1) (i32.const 0)))
    (i32.store8 (i32.const 4) (call $fd_write (i32.const 1) (i32.const 32) (i32.const 1) (i32.const 64)))
    (i32.store8 (i32.const 5) (call $fd_write (i32.const 3) (i32.const 32) (i32.const 1) (i32.const 64)))
    (i32.store8 (i32.const 6)
      (call $path_open (i32.const 3) (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 0)
        (i64.const 2) (i64.const 0) (i32.const 0) (i32.const 64)))
    (i32.store8 (i32.const 7) (call $proc_raise (i32.const 9)))
    (i32.store8 (i32.const 8) (call $clock_time_get (i32.const 99) (i64.const 0) (i32.const 64)))
    (i32.store8 (i32.const 9) (call $fd_prestat_get (i32.const 3) (i32.const 64)))
    ;; write the 10 result bytes to stdout
    (i32.store (i32.const 16) (i32.const 0))
    (i32.store (i32.const 20) (i32.const 10))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 64)))))
