use super::*;

fn plan(args: &str) -> Plan {
    let args: Vec<String> = args.split_whitespace().map(String::from).collect();
    Plan::from_args(&args)
}

#[test]
fn plans_from_clang_arguments() {
    let p = plan("-O2 prog.c -o prog.wasm");
    assert!(p.linking);
    assert_eq!(p.output.as_deref(), Some("prog.wasm"));
    assert_eq!(p.opt_level, "-O2");
    assert!(!p.debug);

    let p = plan("-c prog.c -oprog.o -g");
    assert!(!p.linking);
    assert_eq!(p.output.as_deref(), Some("prog.o"));
    assert!(p.debug);

    assert_eq!(plan("prog.c").output, None);
    assert_eq!(plan("prog.c -O0").opt_level, "-O1");
    assert_eq!(plan("prog.c -Oz").opt_level, "-Oz");
    assert!(!plan("-E prog.c").linking);
    assert!(!plan("--version").linking);
    assert!(!plan("-v").linking);
    assert!(plan("-v prog.c -o x.wasm").linking);
    assert!(!plan("-v -c prog.c").linking);
    assert!(!plan("-print-file-name=libc.a").linking);

    assert!(!plan("prog.c").threads);
    let p = plan("-pthread prog.c -o prog.wasm");
    assert!(p.threads && p.command_start);
    assert!(!plan("-pthread -mexec-model=reactor lib.c").command_start);
    assert!(!plan("-pthread -nostartfiles prog.c").command_start);
}

#[test]
fn archive_layout() {
    // Modules without a linking section: no symbols, an empty index.
    // The first is 13 bytes long (padded), the second 8.
    let odd = [b"\0asm\x01\0\0\0".as_slice(), &[0, 3, 1, b'x', 7]].concat();
    let even = b"\0asm\x01\0\0\0".to_vec();
    let members = vec![("a.o".to_string(), odd.clone()), ("b.o".to_string(), even)];
    let ar = write_archive(&members).unwrap();
    assert!(ar.starts_with(b"!<arch>\n/               0 "));
    assert_eq!(&ar[8 + 48..8 + 60], b"4         `\n");
    let first = 8 + 60 + 4;
    assert_eq!(&ar[first..first + 16], b"a.o/            ");
    assert_eq!(&ar[first + 48..first + 60], b"13        `\n");
    assert_eq!(&ar[first + 60..first + 73], odd.as_slice());
    assert_eq!(ar[first + 73], b'\n');
    let second = first + 60 + 14;
    assert_eq!(&ar[second..second + 4], b"b.o/");
    assert_eq!(ar.len(), second + 60 + 8);
}

/// The index names what each object defines, as llvm-ar's would.
#[test]
fn archive_index_lists_defined_symbols() {
    // A relocatable object defining `f` and importing `g`: the
    // `linking` section's symbol table, encoded by hand.
    let table = [
        &[3u8][..],                // three symbols:
        &[0, 0, 0, 1, b'f'],       // function 0, defined, named f
        &[0, 0x10, 1],             // function 1, undefined (its import's name)
        &[1, 0, 1, b'd', 0, 0, 4], // data d, defined: segment 0, offset 0, size 4
    ]
    .concat();
    // Version 2, then subsection 8 (the symbol table).
    let mut linking = vec![2u8, 8, table.len() as u8];
    linking.extend(&table);
    let mut custom = vec![7u8];
    custom.extend(b"linking");
    custom.extend(&linking);
    let mut object = b"\0asm\x01\0\0\0".to_vec();
    object.push(0);
    object.push(custom.len() as u8);
    object.extend(&custom);
    assert_eq!(defined_symbols(&object).unwrap(), vec!["f", "d"]);
    let ar = write_archive(&[("x.o".to_string(), object)]).unwrap();
    // Two symbols, both in the member at offset 8 + 60 + (4 + 8 + 4).
    let index = &ar[68..68 + 16];
    assert_eq!(&index[..4], &2u32.to_be_bytes());
    assert_eq!(&index[4..8], &84u32.to_be_bytes());
    assert_eq!(&index[8..12], &84u32.to_be_bytes());
    assert_eq!(&index[12..16], b"f\0d\0");
}

#[test]
fn detects_fork_imports() {
    let plain =
        wat_module(r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))))"#);
    assert!(!needs_asyncify(&plain).unwrap());
    let fork =
        wat_module(r#"(module (import "warden" "proc_fork" (func (param i32 i32) (result i32))))"#);
    assert!(needs_asyncify(&fork).unwrap());
    let pipe =
        wat_module(r#"(module (import "warden" "fd_pipe" (func (param i32 i32) (result i32))))"#);
    assert!(!needs_asyncify(&pipe).unwrap());
}

/// A tiny module from its text: only imports, encoded by hand.
fn wat_module(text: &str) -> Vec<u8> {
    // (import "MOD" "NAME" (func (param i32...) (result i32)?))
    let quoted: Vec<&str> = text.split('"').collect();
    let (module, name) = (quoted[1], quoted[3]);
    let params = text.matches("i32").count() - usize::from(text.contains("result"));
    let results = usize::from(text.contains("result"));
    let mut ty = vec![0x60, params as u8];
    ty.extend(std::iter::repeat_n(0x7f, params));
    ty.push(results as u8);
    ty.extend(std::iter::repeat_n(0x7f, results));
    let mut types = vec![1u8];
    types.extend(ty);
    let mut imports = vec![1u8, module.len() as u8];
    imports.extend(module.as_bytes());
    imports.push(name.len() as u8);
    imports.extend(name.as_bytes());
    imports.extend([0x00, 0x00]);
    let mut m = b"\0asm\x01\0\0\0".to_vec();
    for (id, body) in [(1u8, types), (2u8, imports)] {
        m.push(id);
        m.push(body.len() as u8);
        m.extend(body);
    }
    m
}
