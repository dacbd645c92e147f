;; Reference guest for the thunderpac guest ABI (see README / DESIGN.md):
;;   exports memory, alloc(len) -> ptr, and entries NAME(ptr, len) -> i64 = (out_ptr << 32) | out_len;
;;   a negative result is a guest-reported error.
;; Entries: echo, reverse, count (fresh-instance probe), and misbehaving ones the backend must
;; contain: fail, trap, spin, deep, big, oob; badsig has the wrong signature for an entry.
(module
  ;; Small on purpose: 2 pages to start, 16 (1 MiB) at most.
  (memory (export "memory") 2 16)

  ;; Bump allocator: the heap starts at 1 KiB and only grows; an instance lives for one
  ;; execution, so nothing is ever freed.
  (global $heap (mut i32) (i32.const 1024))
  ;; Incremented by `count`; a fresh instance per execution means it is always 1 there.
  (global $counter (mut i32) (i32.const 0))

  (func $alloc (export "alloc") (param $len i32) (result i32)
    (local $p i32) (local $end i32) (local $have i32)
    (local.set $p (global.get $heap))
    ;; end = align8(p + len)
    (local.set $end (i32.and (i32.add (i32.add (local.get $p) (local.get $len)) (i32.const 7)) (i32.const -8)))
    (local.set $have (i32.mul (memory.size) (i32.const 65536)))
    (if (i32.gt_u (local.get $end) (local.get $have))
      (then
        (if (i32.eq
              (memory.grow (i32.shr_u (i32.add (i32.sub (local.get $end) (local.get $have)) (i32.const 65535))
                                      (i32.const 16)))
              (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (local.get $p))

  (func $pack (param $ptr i32) (param $len i32) (result i64)
    (i64.or (i64.shl (i64.extend_i32_u (local.get $ptr)) (i64.const 32))
            (i64.extend_i32_u (local.get $len))))

  ;; output = input, in place
  (func (export "echo") (param $ptr i32) (param $len i32) (result i64)
    (call $pack (local.get $ptr) (local.get $len)))

  ;; output = input reversed, into a fresh buffer
  (func (export "reverse") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32) (local $i i32)
    (local.set $out (call $alloc (local.get $len)))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
        (i32.store8
          (i32.add (local.get $out) (local.get $i))
          (i32.load8_u (i32.sub (i32.add (local.get $ptr) (local.get $len))
                                (i32.add (local.get $i) (i32.const 1)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (call $pack (local.get $out) (local.get $len)))

  ;; output = the counter after incrementing it, as a u32 little-endian
  (func (export "count") (param $ptr i32) (param $len i32) (result i64)
    (local $out i32)
    (global.set $counter (i32.add (global.get $counter) (i32.const 1)))
    (local.set $out (call $alloc (i32.const 4)))
    (i32.store (local.get $out) (global.get $counter))
    (call $pack (local.get $out) (i32.const 4)))

  ;; a guest-reported error: -7
  (func (export "fail") (param $ptr i32) (param $len i32) (result i64)
    (i64.const -7))

  (func (export "trap") (param $ptr i32) (param $len i32) (result i64)
    unreachable)

  ;; a runaway guest: never returns
  (func (export "spin") (param $ptr i32) (param $len i32) (result i64)
    (loop $forever (br $forever))
    unreachable)

  ;; unbounded recursion: exhausts the host's call stack
  (func $deep (export "deep") (param $ptr i32) (param $len i32) (result i64)
    (call $deep (local.get $ptr) (local.get $len)))

  ;; 1 MiB of output: grows memory to its 16-page maximum and returns all of it
  (func (export "big") (param $ptr i32) (param $len i32) (result i64)
    (drop (memory.grow (i32.sub (i32.const 16) (memory.size))))
    (call $pack (i32.const 0) (i32.const 1048576)))

  ;; an output range outside linear memory
  (func (export "oob") (param $ptr i32) (param $len i32) (result i64)
    (call $pack (i32.const 0x7fff0000) (i32.const 0x100000)))

  ;; exported but not an entry: wrong signature
  (func (export "badsig") (param $x i32) (result i32)
    (local.get $x))
)
