/*
 * warden guest library: linked into every module `warden cc` builds, as an
 * object rather than from the archive. It holds no code; compiled with
 * -mmutable-globals, it declares that feature, so that wasm-ld accepts
 * `--export=__stack_pointer` (a mutable global, which fork copies into the
 * child) even when no other input was compiled with it.
 */
typedef int __warden_features_unused;
