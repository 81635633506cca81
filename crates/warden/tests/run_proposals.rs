//! Every WebAssembly proposal the wasmtime CLI enables by default loads and
//! runs under `warden run`: one small `.wat` guest per proposal, each ending
//! with `proc_exit(42)` when the proposal's instructions computed what they
//! should.

mod support;

use support::*;

/// Runs `body` (the inside of a module that imports `proc_exit` as `$exit`)
/// and expects exit code 42 and no complaint from warden.
#[track_caller]
fn runs(name: &str, body: &str) {
    let dir = tempdir();
    let text = format!(
        r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
{body}
)"#
    );
    let module = wat(dir.path(), &format!("{name}.wat"), &text);
    let out = run(warden_run([s(&module)]));
    out.code(42).quiet();
}

#[test]
fn exception_handling() {
    runs(
        "exceptions",
        r#"  (tag $e (param i32))
  (func $thrower (param i32) (throw $e (local.get 0)))
  (func (export "_start")
    (block $caught (result i32)
      (try_table (catch $e $caught)
        (call $thrower (i32.const 42)))
      (i32.const 1))
    (call $exit))"#,
    );
}

#[test]
fn gc_structs_and_arrays() {
    runs(
        "gc",
        r#"  (type $pair (struct (field i32) (field (mut i32))))
  (type $nums (array (mut i32)))
  (func (export "_start")
    (local $p (ref $pair))
    (local $a (ref $nums))
    (local.set $p (struct.new $pair (i32.const 40) (i32.const 0)))
    (struct.set $pair 1 (local.get $p) (i32.const 2))
    (local.set $a (array.new $nums (i32.const 0) (i32.const 3)))
    (array.set $nums (local.get $a) (i32.const 2)
      (i32.add (struct.get $pair 0 (local.get $p)) (struct.get $pair 1 (local.get $p))))
    (call $exit (array.get $nums (local.get $a) (i32.const 2))))"#,
    );
}

#[test]
fn typed_function_references() {
    runs(
        "funcref",
        r#"  (type $unary (func (param i32) (result i32)))
  (func $double (type $unary) (i32.mul (local.get 0) (i32.const 2)))
  (elem declare func $double)
  (func (export "_start")
    (call $exit (call_ref $unary (i32.const 21) (ref.func $double))))"#,
    );
}

#[test]
fn tail_calls() {
    // A million-deep loop by tail calls: without them the stack overflows.
    runs(
        "tailcall",
        r#"  (func $count (param $n i32) (param $acc i32) (result i32)
    (if (result i32) (i32.eqz (local.get $n))
      (then (local.get $acc))
      (else (return_call $count (i32.sub (local.get $n) (i32.const 1))
                                (i32.add (local.get $acc) (i32.const 1))))))
  (func (export "_start")
    (call $exit (i32.sub (call $count (i32.const 1000000) (i32.const 0)) (i32.const 999958))))"#,
    );
}

#[test]
fn relaxed_simd() {
    runs(
        "relaxed",
        r#"  (func (export "_start")
    ;; 6 * 7 + 0 in every lane, fused or not: exact either way.
    (call $exit (i32.trunc_f32_s (f32x4.extract_lane 0
      (f32x4.relaxed_madd (f32x4.splat (f32.const 6)) (f32x4.splat (f32.const 7))
                          (f32x4.splat (f32.const 0)))))))"#,
    );
}

#[test]
fn multiple_memories() {
    runs(
        "multimem",
        r#"  (memory $a 1)
  (memory $b 1)
  (func (export "_start")
    (i32.store $a (i32.const 8) (i32.const 42))
    (memory.copy $b $a (i32.const 16) (i32.const 8) (i32.const 4))
    (call $exit (i32.load $b (i32.const 16))))"#,
    );
}

#[test]
fn extended_constant_expressions() {
    runs(
        "extconst",
        r#"  (global $base i32 (i32.const 40))
  (global $answer i32 (i32.add (global.get $base) (i32.mul (i32.const 1) (i32.const 2))))
  (func (export "_start") (call $exit (global.get $answer)))"#,
    );
}

#[test]
fn memory64() {
    runs(
        "mem64",
        r#"  (memory i64 1)
  (func (export "_start")
    (i64.store (i64.const 65528) (i64.const 42))
    (call $exit (i32.wrap_i64 (i64.load (i64.const 65528)))))"#,
    );
}

#[test]
fn atomics_on_a_private_memory() {
    // The threads proposal's instructions; shared memories (threads
    // themselves) are a separate grant.
    runs(
        "atomics",
        r#"  (memory 1)
  (func (export "_start")
    (i32.atomic.store (i32.const 0) (i32.const 40))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 2)))
    (call $exit (i32.atomic.load (i32.const 0))))"#,
    );
}

#[test]
fn the_earlier_defaults_still_run() {
    // SIMD, bulk memory, multi-value, sign extension, reference types.
    runs(
        "mvp_plus",
        r#"  (memory 1)
  (table 1 funcref)
  (func $two (result i32 i32) (i32.const 40) (i32.const 2))
  (func (export "_start")
    (memory.fill (i32.const 0) (i32.const 0) (i32.const 16))
    (v128.store (i32.const 0) (i32x4.add (i32x4.splat (i32.const 20)) (i32x4.splat (i32.const 1))))
    (call $two)
    (i32.add)
    (drop)
    (drop (ref.is_null (table.get (i32.const 0))))
    (call $exit (i32.add (i32.extend8_s (i32.load8_u (i32.const 4)))
                         (i32.load (i32.const 12)))))"#,
    );
}
