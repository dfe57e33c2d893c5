//! Cross-checks against `CPython` itself: what penin writes is what Python's
//! `json.dumps(..., indent=2)` writes for the same values, and what Python writes penin
//! re-saves byte for byte.
//!
//! Needs `python3` on `PATH`. Without it each test is skipped through
//! `penin_testkit::skip`: a failure under CI unless `PENIN_ALLOW_SKIP` names it.

use std::io::Write as _;
use std::process::{Command, Stdio};

use penin_codec::{Document, Map, Number, Value};

/// Reads JSON on stdin and writes it back as `json.dump(..., indent=2)` does.
const RESAVE: &str = r"
import json, sys
data = json.loads(sys.stdin.buffer.read())
sys.stdout.write(json.dumps(data, indent=2))
";

/// Writes random values, then random whole states, each as the seed writes a state
/// (`json.dump(value, cls=StateEncoder, indent=2)`), separated by NUL bytes (which JSON
/// text written by Python never holds: it escapes them).
const GENERATE: &str = r#"
import json, math, random, struct, sys
from collections import deque

class Artifact:
    def __init__(self, vector, metadata):
        self.vector = vector
        self.metadata = metadata

class StateEncoder(json.JSONEncoder):
    def default(self, o):
        if isinstance(o, Artifact):
            return {"__type__": "NumericVectorArtifact", "vector": o.vector, "metadata": o.metadata}
        if isinstance(o, deque):
            return {"__type__": "deque", "items": list(o), "maxlen": o.maxlen}
        return super().default(o)

rnd = random.Random(int(sys.argv[1]))
values, states = int(sys.argv[2]), int(sys.argv[3])

def rfloat():
    k = rnd.random()
    if k < 0.35:
        return struct.unpack("<d", rnd.getrandbits(64).to_bytes(8, "little"))[0]
    if k < 0.6:
        return rnd.uniform(-1, 1)
    if k < 0.7:
        return float(rnd.randint(-2**60, 2**60))
    if k < 0.8:
        return rnd.choice([0.0, -0.0, math.inf, -math.inf, math.nan, 5e-324, 1e-05,
                           0.0001, 1e16, 1e22, 123456789.0, 1.7976931348623157e308])
    return float("%de%d" % (rnd.randint(1, 10 ** rnd.randint(1, 17)), rnd.randint(-330, 310)))

def rint():
    k = rnd.random()
    if k < 0.5:
        return rnd.randint(-1000, 1000)
    if k < 0.7:
        return rnd.choice([0, 2**63 - 1, 2**63, -2**63, -2**63 - 1, 2**64, 2**53 + 1])
    return rnd.randint(-2**rnd.randint(1, 400), 2**rnd.randint(1, 400))

def rchar():
    k = rnd.random()
    if k < 0.5:
        return chr(rnd.randint(0x20, 0x7e))
    if k < 0.6:
        return chr(rnd.choice([*range(0, 0x20), 0x7f, 0x2028, 0x2029, 0xfeff, 0xffff]))
    if k < 0.8:
        c = rnd.randint(0x80, 0xffff)
        return chr(c) if not 0xd800 <= c < 0xe000 else "\u00e9"
    return chr(rnd.randint(0x10000, 0x10ffff))

def rstr(n=12):
    return "".join(rchar() for _ in range(rnd.randint(0, n)))

def rartifact(depth):
    meta = {rstr(6): rvalue(depth + 1) for _ in range(rnd.randint(0, 3))}
    return Artifact([rfloat() for _ in range(rnd.randint(0, 6))], meta)

def rvalue(depth=0):
    k = rnd.randint(0, 9 if depth < 4 else 4)
    if k == 0: return None
    if k == 1: return rnd.random() < 0.5
    if k == 2: return rint()
    if k == 3: return rfloat()
    if k == 4: return rstr()
    if k == 5: return [rvalue(depth + 1) for _ in range(rnd.randint(0, 5))]
    if k in (6, 7): return {rstr(6): rvalue(depth + 1) for _ in range(rnd.randint(0, 5))}
    if k == 8: return rartifact(depth)
    maxlen = rnd.choice([None, 0, 1, 3, 1000])
    return deque([rvalue(depth + 1) for _ in range(rnd.randint(0, 5))], maxlen=maxlen)

def rstate():
    maxlen = rnd.choice([None, 2, 1000])
    state = {
        "knowledge_base": {rstr(8): rartifact(1) for _ in range(rnd.randint(0, 5))},
        "task_history": deque(({rstr(6): rvalue(2) for _ in range(rnd.randint(0, 3))}
                               for _ in range(rnd.randint(0, 5))), maxlen=maxlen),
        "score_history": deque((rnd.choice([rfloat(), rint()]) for _ in range(rnd.randint(0, 5))),
                               maxlen=maxlen),
    }
    for _ in range(rnd.randint(0, 2)):
        state["extra " + rstr(4)] = rvalue(1)
    return state

out = sys.stdout
for _ in range(values):
    json.dump(rvalue(), out, cls=StateEncoder, indent=2)
    out.write("\0")
for _ in range(states):
    json.dump(rstate(), out, cls=StateEncoder, indent=2)
    out.write("\0")
"#;

/// Whether `python3` can run; without it, `test` is skipped (a failure under CI unless
/// allowed).
#[track_caller]
fn python_available(test: &str) -> bool {
    let why = match Command::new("python3").arg("--version").output() {
        Ok(output) if output.status.success() => return true,
        Ok(output) => format!("python3 --version failed ({})", output.status),
        Err(error) => format!("python3 cannot run ({error})"),
    };
    penin_testkit::skip(test, &format!("{why}: no CPython to cross-check with"));
    false
}

/// Runs `python3 -c code args...` with `input` on stdin; returns its stdout.
fn python(code: &str, args: &[&str], input: &[u8]) -> Vec<u8> {
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(code)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start python3");
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    // Written from another thread so that a full stdout pipe cannot block both sides.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    assert!(
        output.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// Asserts the two outputs are the same bytes, naming the first line that differs.
fn assert_same(penin: &[u8], cpython: &[u8], what: &str) {
    if penin == cpython {
        return;
    }
    let ours = String::from_utf8_lossy(penin);
    let theirs = String::from_utf8_lossy(cpython);
    let first = ours
        .lines()
        .zip(theirs.lines())
        .enumerate()
        .find(|(_, (a, b))| a != b);
    match first {
        Some((i, (a, b))) => panic!(
            "{what}: penin and CPython differ at line {}: penin {a:?}, CPython {b:?}",
            i + 1
        ),
        None => panic!(
            "{what}: penin wrote {} bytes, CPython {}",
            penin.len(),
            cpython.len()
        ),
    }
}

/// xorshift64: small, seeded, reproducible.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in `[0, 1)`, from the top 52 bits.
    fn unit(&mut self) -> f64 {
        f64::from_bits(0x3FF0_0000_0000_0000 | (self.next() >> 12)) - 1.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn parse(text: &str) -> f64 {
    text.parse().unwrap()
}

/// About 200,000 floats: random bit patterns, random values in [-1, 1], and the cases
/// where a float printer goes wrong.
fn floats() -> Vec<f64> {
    let mut rng = XorShift(0x2545_F491_4F6C_DD1D);
    let mut out = Vec::with_capacity(210_000);
    // Random bit patterns: every exponent, subnormals, NaNs with payloads.
    for _ in 0..100_000 {
        out.push(f64::from_bits(rng.next()));
    }
    for _ in 0..50_000 {
        out.push(rng.unit() * 2.0 - 1.0);
    }
    // Subnormals, smallest and largest.
    for bits in 1..=2_000_u64 {
        out.push(f64::from_bits(bits));
        out.push(-f64::from_bits(bits));
    }
    for _ in 0..5_000 {
        out.push(f64::from_bits(rng.next() & 0x000F_FFFF_FFFF_FFFF));
    }
    let min_normal = f64::MIN_POSITIVE.to_bits();
    out.extend([
        f64::from_bits(min_normal),
        f64::from_bits(min_normal - 1),
        f64::from_bits(min_normal + 1),
        f64::MAX,
        f64::from_bits(f64::MAX.to_bits() - 1),
        f64::MIN,
        f64::EPSILON,
        0.0,
        -0.0,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ]);
    // Powers of ten and their neighbours, where positional and exponent forms meet.
    for e in -30..=30 {
        let p = parse(&format!("1e{e}"));
        out.extend([
            p,
            -p,
            f64::from_bits(p.to_bits() + 1),
            f64::from_bits(p.to_bits() - 1),
        ]);
        for m in [2, 5, 9] {
            out.push(parse(&format!("{m}e{e}")));
            out.push(parse(&format!("{m}.5e{e}")));
        }
    }
    // Integers near 2^53, where floats stop holding every integer.
    for d in -1_000_i64..=1_000 {
        let n = (1_i64 << 53) + d;
        out.push(parse(&n.to_string()));
        out.push(parse(&(-n).to_string()));
        out.push(parse(&format!("{}", (1_i64 << 54) + 3 * d)));
    }
    // Ties: values whose two shortest spellings are equally near (1658206780088562.25 is
    // written `…562.2` by Python, `…562.3` by a printer that rounds half up).
    out.push(1_658_206_780_088_562.2);
    for _ in 0..20_000 {
        let m = (1_u64 << 50) + rng.below(1 << 50);
        let fraction = ["25", "75"][usize::from(rng.next() & 1 == 1)];
        out.push(parse(&format!("{m}.{fraction}")));
        let m = (1_u64 << 51) + rng.below(1 << 51);
        out.push(parse(&format!("{m}.5")));
    }
    // Short decimals at every scale, as people write them.
    for _ in 0..15_000 {
        let scale = 10_u64.pow(1 + u32::try_from(rng.below(17)).unwrap());
        let digits = rng.below(scale);
        let exponent = i64::try_from(rng.below(640)).unwrap() - 330;
        out.push(parse(&format!("{digits}e{exponent}")));
    }
    out
}

#[test]
fn floats_are_written_as_cpython_writes_them() {
    if !python_available("floats_are_written_as_cpython_writes_them") {
        return;
    }
    let floats = floats();
    assert!(floats.len() >= 200_000, "{}", floats.len());
    let value = Value::Array(floats.iter().map(|&f| Value::from(f)).collect());
    let ours = penin_codec::to_vec(&value);
    let cpython = python(RESAVE, &[], &ours);
    assert_same(&ours, &cpython, "floats");

    // And what penin wrote reads back as the same floats, so the spelling CPython agrees
    // with is the spelling of these very values.
    let Value::Array(back) = penin_codec::from_slice::<Value>(&ours).unwrap() else {
        panic!("not an array")
    };
    assert_eq!(back.len(), floats.len());
    for (f, v) in floats.iter().zip(&back) {
        let Value::Number(Number::Float(g)) = v else {
            panic!("{v:?} is not a float")
        };
        assert!(
            g.to_bits() == f.to_bits() || (f.is_nan() && g.is_nan()),
            "{f:e} read back as {g:e}"
        );
    }
}

/// A random Unicode scalar value, weighted towards the characters that need escaping.
fn random_char(rng: &mut XorShift) -> char {
    let code = match rng.below(10) {
        0..=3 => 0x20 + rng.below(0x5f),
        4 => rng.below(0x20),
        5 => [0x7f, 0x2028, 0x2029, 0xfeff, 0xfffe, 0xffff, 0x80, 0xa0]
            [usize::try_from(rng.below(8)).unwrap()],
        6 | 7 => 0x80 + rng.below(0xffff - 0x80),
        _ => 0x10000 + rng.below(0x10_0000),
    };
    // Surrogates are not scalar values: those draws become U+FFFD.
    char::from_u32(u32::try_from(code).unwrap()).unwrap_or('\u{fffd}')
}

#[test]
fn strings_are_escaped_as_cpython_escapes_them() {
    if !python_available("strings_are_escaped_as_cpython_escapes_them") {
        return;
    }
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let strings: Vec<String> = (0..20_000)
        .map(|_| {
            let len = rng.below(24);
            (0..len).map(|_| random_char(&mut rng)).collect()
        })
        .collect();
    // Every scalar value at least once, in strings of 64.
    let every: Vec<String> = (0..=0x10_FFFF_u32)
        .filter_map(char::from_u32)
        .collect::<Vec<char>>()
        .chunks(64)
        .map(|chunk| chunk.iter().collect())
        .collect();
    for (what, strings) in [("random strings", &strings), ("every character", &every)] {
        let value = Value::Array(strings.iter().map(|s| Value::from(s.as_str())).collect());
        let ours = penin_codec::to_vec(&value);
        assert!(ours.is_ascii());
        assert_same(&ours, &python(RESAVE, &[], &ours), what);
        assert_eq!(penin_codec::from_slice::<Value>(&ours).unwrap(), value);
    }

    // As object keys too.
    let keys: Map = strings
        .iter()
        .take(5_000)
        .enumerate()
        .map(|(i, s)| (s.clone(), Value::from(i64::try_from(i).unwrap())))
        .collect();
    let value = Value::from(keys);
    let ours = penin_codec::to_vec(&value);
    assert_same(&ours, &python(RESAVE, &[], &ours), "keys");
    assert_eq!(penin_codec::from_slice::<Value>(&ours).unwrap(), value);
}

#[test]
fn what_cpython_writes_penin_resaves_byte_for_byte() {
    if !python_available("what_cpython_writes_penin_resaves_byte_for_byte") {
        return;
    }
    let (values, states) = (400, 150);
    let output = python(
        GENERATE,
        &["20240601", &values.to_string(), &states.to_string()],
        b"",
    );
    let documents: Vec<&[u8]> = output
        .split(|&b| b == 0)
        .filter(|d| !d.is_empty())
        .collect();
    assert_eq!(documents.len(), values + states);
    let mut tags = 0;
    for (i, text) in documents.iter().enumerate() {
        let value: Value =
            penin_codec::from_slice(text).unwrap_or_else(|e| panic!("document {i}: {e}"));
        assert_same(&penin_codec::to_vec(&value), text, &format!("value {i}"));
        if i >= values {
            let doc: Document =
                penin_codec::from_slice(text).unwrap_or_else(|e| panic!("state {i}: {e}"));
            assert_same(&penin_codec::to_vec(&doc), text, &format!("state {i}"));
        }
        let text = std::str::from_utf8(text).unwrap();
        tags += text
            .matches("\"__type__\": \"NumericVectorArtifact\"")
            .count();
        tags += text.matches("\"__type__\": \"deque\"").count();
    }
    // The generator did exercise the tags, not only plain JSON.
    assert!(tags > 500, "{tags} tagged objects");
}
