//! The Bristol Fashion reader and writer: the sample circuits of `circuits/` against known
//! answers and 64-bit arithmetic, round trips, statistics, and malformed files.

use std::path::PathBuf;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use veil_circuit::bits::{bits_from_hex, bits_to_hex};
use veil_circuit::testing::{check_sample_circuits, plaintext, sha256_padded_blocks, SHA256_IV};
use veil_circuit::{parse_bristol, read_bristol, write_bristol, Circuit, CircuitError};

fn sample(name: &str) -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../circuits")).join(name)
}

fn load(name: &str) -> Circuit {
    read_bristol(sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Under the crate's convention, input 0 of `aes_128.txt` is the key and input 1 the
/// plaintext (FIPS-197 appendix C.1).
#[test]
fn aes_128_known_answer() {
    let aes = load("aes_128.txt");
    let key = bits_from_hex("000102030405060708090a0b0c0d0e0f", 128).unwrap();
    let plain = bits_from_hex("00112233445566778899aabbccddeeff", 128).unwrap();
    let out = aes.eval(&[key, plain]).unwrap();
    assert_eq!(bits_to_hex(&out[0]), "69c4e0d86a7b0430d8cdb78070b4c55a");
}

/// Input 0 of `aes_256.txt` is the 256-bit key, input 1 the plaintext (FIPS-197 C.3).
#[test]
fn aes_256_known_answer() {
    let aes = load("aes_256.txt");
    let key = bits_from_hex(
        "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f",
        256,
    )
    .unwrap();
    let plain = bits_from_hex("00112233445566778899aabbccddeeff", 128).unwrap();
    let out = aes.eval(&[key, plain]).unwrap();
    assert_eq!(bits_to_hex(&out[0]), "8ea2b7ca516745bfeafc49904b496089");
}

/// `sha256.txt` is the compression function. Input 0 is the padded 512-bit block as the
/// big-endian integer of its 64 bytes (the first message byte is the most significant, so the
/// hex string is the bytes in order); input 1 is the chaining value `H0 || ... || H7` as a
/// big-endian 256-bit integer (the initial value's hex string in FIPS 180-4 order); the output
/// is the new chaining value the same way, which for a one-block message is the digest.
#[test]
fn sha256_of_abc() {
    let sha = load("sha256.txt");
    let blocks = sha256_padded_blocks(b"abc");
    assert_eq!(blocks.len(), 1);
    assert!(blocks[0].starts_with("6162638000"));
    assert!(blocks[0].ends_with("0018"));
    let block = bits_from_hex(&blocks[0], 512).unwrap();
    let iv = bits_from_hex(SHA256_IV, 256).unwrap();
    let out = sha.eval(&[block, iv]).unwrap();
    assert_eq!(
        bits_to_hex(&out[0]),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn sample_circuits_pass_the_backend_suite() {
    let report =
        check_sample_circuits(plaintext, sample(""), 16, 42).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(report.circuits, 8);
}

/// AND, XOR and INV counts and AND depth of every sample.
#[test]
fn sample_statistics() {
    let expected = [
        ("adder64.txt", 63, 313, 0, 63),
        ("sub64.txt", 63, 313, 63, 63),
        ("neg64.txt", 62, 63, 64, 62),
        ("mult64.txt", 4033, 9642, 0, 63),
        ("zero_equal.txt", 63, 0, 64, 6),
        ("aes_128.txt", 6400, 28176, 2087, 60),
        ("aes_256.txt", 8832, 39008, 2826, 84),
        ("sha256.txt", 22573, 110644, 1856, 1607),
    ];
    for (name, and, xor, inv, depth) in expected {
        let s = load(name).stats();
        assert_eq!(
            (s.and_count, s.xor_count, s.inv_count, s.and_depth),
            (and, xor, inv, depth),
            "{name}: {s}"
        );
        assert_eq!(s.const_count, 0);
    }
    let aes = load("aes_128.txt").stats();
    assert_eq!((aes.input_bits, aes.output_bits), (256, 128));
}

#[test]
fn samples_round_trip_through_the_writer() {
    let mut rng = ChaCha8Rng::seed_from_u64(3);
    for name in ["adder64.txt", "neg64.txt", "zero_equal.txt", "aes_128.txt"] {
        let c = load(name);
        let text = write_bristol(&c).unwrap();
        let again = parse_bristol(&text).unwrap();
        assert_eq!(again.stats(), c.stats(), "{name}");
        assert_eq!(again.input_widths(), c.input_widths());
        assert_eq!(again.output_widths(), c.output_widths());
        for _ in 0..8 {
            let inputs: Vec<Vec<bool>> = c
                .input_widths()
                .iter()
                .map(|&w| (0..w).map(|_| rng.random()).collect())
                .collect();
            assert_eq!(
                again.eval(&inputs).unwrap(),
                c.eval(&inputs).unwrap(),
                "{name}"
            );
        }
        // Writing is deterministic, and stable under a round trip.
        assert_eq!(write_bristol(&again).unwrap(), text, "{name}");
    }
}

#[test]
fn writer_copies_outputs_that_are_inputs_or_shared() {
    use veil_circuit::Builder;
    let mut b = Builder::new();
    let x = b.input(3);
    let y = b.input(3);
    let s = b.add(&x, &y);
    let z = b.constant(5, 3);
    b.output(&x);
    b.output(&s);
    b.output(&s);
    b.output(&z);
    let c = b.finish();
    let text = write_bristol(&c).unwrap();
    assert!(text.contains("EQW"));
    assert!(text.contains(" EQ\n"));
    let again = parse_bristol(&text).unwrap();
    for (p, q) in [(0u128, 0u128), (7, 1), (3, 6), (5, 5)] {
        assert_eq!(
            again.eval_words(&[p, q]).unwrap(),
            vec![p, (p + q) & 7, (p + q) & 7, 5]
        );
    }
    // The header: gates and wires, then the widths; the outputs are the last 12 wires.
    let mut lines = text.lines();
    let header: Vec<u64> = lines
        .next()
        .unwrap()
        .split_whitespace()
        .map(|t| t.parse().unwrap())
        .collect();
    assert_eq!(lines.next(), Some("2 3 3"));
    assert_eq!(lines.next(), Some("4 3 3 3 3"));
    let nwires = header[1];
    for line in text.lines().skip(4) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let out: u64 = fields[fields.len() - 2].parse().unwrap();
        assert!(out >= 6 && out < nwires);
    }
}

fn parse_error(text: &str) -> (usize, String) {
    match parse_bristol(text) {
        Err(CircuitError::Parse { line, reason }) => (line, reason),
        Err(e) => panic!("expected a parse error, got {e}"),
        Ok(_) => panic!("expected a parse error, got a circuit"),
    }
}

/// A 2-bit adder with carry out: the outputs are the last three wires, 8 (bit 0), 9 and 10.
const ADDER2: &str = "\
7 11
2 2 2
1 3

2 1 0 2 8 XOR
2 1 0 2 4 AND
2 1 1 3 5 XOR
2 1 5 4 9 XOR
2 1 1 3 6 AND
2 1 5 4 7 AND
2 1 6 7 10 XOR
";

#[test]
fn small_adder_parses() {
    let c = parse_bristol(ADDER2).unwrap();
    assert_eq!(c.input_widths(), vec![2, 2]);
    assert_eq!(c.output_widths(), vec![3]);
    for a in 0..4 {
        for b in 0..4 {
            assert_eq!(c.eval_words(&[a, b]).unwrap(), vec![a + b]);
        }
    }
}

#[test]
fn malformed_files_name_their_line() {
    let cases: Vec<(String, usize, &str)> = vec![
        // Bad header.
        (
            "7 11 3\n2 2 2\n1 3\n".into(),
            1,
            "the header needs 2 numbers",
        ),
        (
            "seven 11\n2 2 2\n1 3\n".into(),
            1,
            "expected a number, found `seven`",
        ),
        (
            "7 11\n3 2 2\n1 3\n".into(),
            2,
            "declares 3 input values but lists 2 widths",
        ),
        (
            "7 11\n2 2 2\n".into(),
            3,
            "the file ends before the output widths",
        ),
        (
            "7 -11\n2 2 2\n1 3\n".into(),
            1,
            "expected a number, found `-11`",
        ),
        (
            "7 3\n2 2 2\n1 3\n".into(),
            1,
            "fewer than the 4 input or output bits",
        ),
        // Wrong gate arity, unknown gate, non-numeric token.
        (
            ADDER2.replace("2 1 0 2 4 AND", "3 1 0 2 4 AND"),
            6,
            "declares 3 inputs and 1 outputs but lists 3 wires",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "1 2 0 2 4 AND"),
            6,
            "AND takes 2 inputs and 1 output, not 1 and 2",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 2 4 NAND"),
            6,
            "unknown gate `NAND`",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 x 4 AND"),
            6,
            "expected a number, found `x`",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 4 AND"),
            6,
            "declares 2 inputs and 1 outputs but lists 2 wires",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "AND"),
            6,
            "a gate line needs at least 4 fields",
        ),
        // Wires out of range, read before written, written twice.
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 99999 4 AND"),
            6,
            "gate reads wire 99999 beyond the 11 wires declared",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 2 11 AND"),
            6,
            "gate writes wire 11 beyond the 11 wires declared",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 5 4 AND"),
            6,
            "gate reads wire 5 before it is written",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 2 8 AND"),
            6,
            "gate writes wire 8, which is already written",
        ),
        (
            ADDER2.replace("2 1 0 2 4 AND", "2 1 0 2 3 AND"),
            6,
            "gate writes wire 3, which is already written",
        ),
        // Gate count mismatch, truncated file.
        (
            ADDER2.replacen("7 11", "6 11", 1),
            11,
            "gate line beyond the 6 gates declared",
        ),
        (
            ADDER2.replacen("7 11", "8 11", 1),
            12,
            "the file ends after 7 gate lines; the header declares 8",
        ),
        (
            ADDER2[..ADDER2.len() - 15].to_string(),
            11,
            "the file ends after 6 gate lines",
        ),
        (
            ADDER2[..ADDER2.len() - 5].to_string(),
            11,
            "declares 2 inputs and 1 outputs but lists 2 wires",
        ),
        // An output wire that no gate writes.
        (
            ADDER2.replace("2 1 6 7 10 XOR", "2 1 6 7 1 XOR"),
            11,
            "gate writes wire 1, which is already written",
        ),
        (
            ADDER2
                .replacen("7 11", "6 11", 1)
                .replace("2 1 6 7 10 XOR\n", ""),
            3,
            "output wire 10 (value 0, bit 2) is never written",
        ),
        // Hostile counts.
        (
            "4000000000 4000000000\n2 2 2\n1 3\n".into(),
            1,
            "the header declares 4000000000 wires, more than a file",
        ),
        (
            "4000000000 11\n2 2 2\n1 3\n".into(),
            4,
            "the file ends after 0 gate lines; the header declares 4000000000",
        ),
        (
            "1 4000000000\n1 4000000000\n1 1\n2 1 0 0 3999999999 AND\n".into(),
            2,
            "input widths exceed the supported",
        ),
        (
            "1 99999999999999999999\n2 2 2\n1 3\n".into(),
            1,
            "expected a number",
        ),
        (
            "1 11\n3 18446744073709551615 18446744073709551615 1\n1 3\n".into(),
            2,
            "input widths exceed",
        ),
        (
            "1 11\n99999999999 2 2\n1 3\n".into(),
            2,
            "declares 99999999999 input values but lists 2",
        ),
    ];
    for (text, line, reason) in cases {
        let (got_line, got_reason) = parse_error(&text);
        assert!(
            got_line == line && got_reason.contains(reason),
            "for\n{text}\nexpected line {line}: {reason}\ngot line {got_line}: {got_reason}"
        );
    }
    let e = parse_bristol(&ADDER2.replace("2 1 0 2 4 AND", "2 1 0 99999 4 AND")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 6: gate reads wire 99999 beyond the 11 wires declared"
    );
}

#[test]
fn aes_error_message_names_line_and_declared_wires() {
    let text = std::fs::read_to_string(sample("aes_128.txt")).unwrap();
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    // Line 42 of the file (index 41) is a gate line; make it read a wire beyond the 36919.
    let fields: Vec<String> = lines[41].split_whitespace().map(String::from).collect();
    let mut broken = fields.clone();
    broken[2] = "99999".into();
    lines[41] = broken.join(" ");
    let e = parse_bristol(&lines.join("\n")).unwrap_err();
    assert_eq!(
        e.to_string(),
        "line 42: gate reads wire 99999 beyond the 36919 wires declared"
    );
}

#[test]
fn missing_file_is_an_io_error() {
    assert!(matches!(
        read_bristol(sample("no_such_circuit.txt")),
        Err(CircuitError::Io { .. })
    ));
}

/// No input makes the parser panic: every prefix of a real file, and random byte edits.
#[test]
fn parser_never_panics() {
    let text = std::fs::read_to_string(sample("neg64.txt")).unwrap();
    let mut cut = 0;
    while cut < text.len() {
        let _ = parse_bristol(&text[..cut]);
        cut += 7;
    }
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let alphabet = b"0123456789 \nXORANDINVEQWM-x";
    let bytes = text.as_bytes();
    for _ in 0..300 {
        let mut edited = bytes.to_vec();
        for _ in 0..3 {
            let at = (next() % edited.len() as u64) as usize;
            edited[at] = alphabet[(next() % alphabet.len() as u64) as usize];
        }
        let _ = parse_bristol(&String::from_utf8_lossy(&edited));
    }
}
