//! Schema parser: any string parses or fails with an error (never panics), and what parses
//! prints to a string that parses to the same schema.

use opdispatch_schema::{parse_name, parse_schema_or_name, parse_schema_with_options};

/// The target body.
pub fn fuzz(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    let _ = parse_name(&s);
    let _ = parse_schema_or_name(&s);
    for allow_typevars in [false, true] {
        if let Ok(schema) = parse_schema_with_options(&s, allow_typevars) {
            // PyTorch's unions do not round-trip (members may coincide after unification), nor
            // do string defaults with bytes outside printable ASCII (printQuotedString's octal
            // escapes are computed on a signed char: `\303` prints as `\0)+`, kept on purpose).
            if s.contains("Union") || !s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
                continue;
            }
            // Printing may normalize once (PyTorch prints `int[2] y=[1, 1]` as `y=1`, which
            // parses back as `[1, 1]` only when N is 2), then it must be a fixed point.
            let reparse = |p: &str| match parse_schema_with_options(p, allow_typevars) {
                Ok(again) => again.to_string(),
                Err(e) => panic!("printed schema {p:?} of {s:?} fails: {e}"),
            };
            let first = schema.to_string();
            // `Tensor!` gets a generated alias set, printed `($0! -> )` as PyTorch does, which
            // is not parseable syntax (in PyTorch either).
            if first.contains('$') {
                continue;
            }
            let second = reparse(&first);
            assert_eq!(
                reparse(&second),
                second,
                "printing does not settle for {s:?}"
            );
        }
    }
}
