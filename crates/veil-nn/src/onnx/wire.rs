//! A pass over the protobuf wire format before decoding: it bounds what decoding allocates.
//!
//! A protobuf decoder allocates per field occurrence: a two-byte empty `NodeProto` becomes a
//! struct of a hundred-odd bytes, a one-byte varint in a packed `int64` list becomes eight. So
//! a file of a few hundred megabytes could ask for tens of gigabytes. This pass walks the
//! bytes with the schema of the declared messages ([`super::proto`]), adds up what decoding
//! them will allocate, and stops at [`MAX_DECODED_BYTES`]; it also rejects malformed framing
//! (truncated varints and lengths, field number 0, the deprecated group wire types, nesting
//! deeper than the schema allows). Encoding: <https://protobuf.dev/programming-guides/encoding/>.

use std::mem::size_of;

use super::proto::{
    AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};

/// Most bytes that decoding a model may allocate (estimated from the wire format).
pub const MAX_DECODED_BYTES: u64 = 1 << 30;

/// Deepest nesting of the declared messages (`ModelProto` to `Dimension` is 7 levels).
const MAX_DEPTH: usize = 8;

#[derive(Clone, Copy)]
enum Kind {
    /// A scalar: no allocation.
    Scalar,
    /// A string or bytes: one `Vec` plus its contents.
    Bytes,
    /// A nested message of the given schema.
    Msg(&'static Schema),
    /// A repeated varint (`int64`, `int32`), packed or not: 8 bytes an element.
    Varints,
    /// A repeated `float`, packed or not: 4 bytes an element.
    Floats,
}

struct Schema {
    /// Size of the decoded struct.
    size: usize,
    /// Declared fields: (number, kind).
    fields: &'static [(u64, Kind)],
}

static MODEL: Schema = Schema {
    size: size_of::<ModelProto>(),
    fields: &[
        (1, Kind::Scalar),
        (2, Kind::Bytes),
        (3, Kind::Bytes),
        (7, Kind::Msg(&GRAPH)),
        (8, Kind::Msg(&OPSET)),
    ],
};
static OPSET: Schema = Schema {
    size: size_of::<OperatorSetIdProto>(),
    fields: &[(1, Kind::Bytes), (2, Kind::Scalar)],
};
static GRAPH: Schema = Schema {
    size: size_of::<GraphProto>(),
    fields: &[
        (1, Kind::Msg(&NODE)),
        (2, Kind::Bytes),
        (5, Kind::Msg(&TENSOR)),
        (11, Kind::Msg(&VALUE_INFO)),
        (12, Kind::Msg(&VALUE_INFO)),
    ],
};
static NODE: Schema = Schema {
    size: size_of::<NodeProto>(),
    fields: &[
        (1, Kind::Bytes),
        (2, Kind::Bytes),
        (3, Kind::Bytes),
        (4, Kind::Bytes),
        (5, Kind::Msg(&ATTRIBUTE)),
        (7, Kind::Bytes),
    ],
};
static ATTRIBUTE: Schema = Schema {
    size: size_of::<AttributeProto>(),
    fields: &[
        (1, Kind::Bytes),
        (2, Kind::Scalar),
        (3, Kind::Scalar),
        (4, Kind::Bytes),
        (5, Kind::Msg(&TENSOR)),
        (7, Kind::Floats),
        (8, Kind::Varints),
        (20, Kind::Scalar),
    ],
};
static TENSOR: Schema = Schema {
    size: size_of::<TensorProto>(),
    fields: &[
        (1, Kind::Varints),
        (2, Kind::Scalar),
        (4, Kind::Floats),
        (5, Kind::Varints),
        (7, Kind::Varints),
        (8, Kind::Bytes),
        (9, Kind::Bytes),
        (14, Kind::Scalar),
    ],
};
static VALUE_INFO: Schema = Schema {
    size: size_of::<ValueInfoProto>(),
    fields: &[(1, Kind::Bytes), (2, Kind::Msg(&TYPE))],
};
static TYPE: Schema = Schema {
    size: size_of::<TypeProto>(),
    fields: &[(1, Kind::Msg(&TENSOR_TYPE))],
};
static TENSOR_TYPE: Schema = Schema {
    size: size_of::<TypeProtoTensor>(),
    fields: &[(1, Kind::Scalar), (2, Kind::Msg(&SHAPE))],
};
static SHAPE: Schema = Schema {
    size: size_of::<TensorShapeProto>(),
    fields: &[(1, Kind::Msg(&DIMENSION))],
};
static DIMENSION: Schema = Schema {
    size: size_of::<Dimension>(),
    fields: &[(1, Kind::Scalar), (2, Kind::Bytes)],
};

/// Checks the framing of a serialized `ModelProto` and that decoding it allocates at most
/// [`MAX_DECODED_BYTES`]; returns the estimate, or what is wrong.
pub fn check_model(bytes: &[u8]) -> Result<u64, String> {
    let mut cost = MODEL.size as u64;
    walk(bytes, &MODEL, 1, &mut cost)?;
    Ok(cost)
}

fn varint(buf: &[u8], p: &mut usize) -> Result<u64, String> {
    let mut v = 0u64;
    for k in 0..10 {
        let b = *buf
            .get(*p)
            .ok_or_else(|| format!("truncated varint at byte {}", *p))?;
        *p += 1;
        v |= u64::from(b & 0x7f) << (7 * k);
        if b < 0x80 {
            return Ok(v);
        }
    }
    Err(format!("varint longer than 10 bytes before byte {}", *p))
}

fn walk(buf: &[u8], schema: &Schema, depth: usize, cost: &mut u64) -> Result<(), String> {
    let mut p = 0;
    while p < buf.len() {
        let key = varint(buf, &mut p)?;
        let field = key >> 3;
        if field == 0 || field > u64::from(u32::MAX >> 3) {
            return Err(format!("invalid field number {field}"));
        }
        let kind = schema
            .fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|&(_, k)| k);
        let add = match key & 7 {
            0 => {
                varint(buf, &mut p)?;
                matches!(kind, Some(Kind::Varints)) as u64 * 8
            }
            1 | 5 => {
                let n = if key & 7 == 1 { 8 } else { 4 };
                if buf.len() - p < n {
                    return Err(format!("truncated fixed-width field {field}"));
                }
                p += n;
                matches!(kind, Some(Kind::Floats)) as u64 * 4
            }
            2 => {
                let len = varint(buf, &mut p)?;
                if len > (buf.len() - p) as u64 {
                    return Err(format!(
                        "field {field} claims {len} bytes, {} remain",
                        buf.len() - p
                    ));
                }
                let body = &buf[p..p + len as usize];
                p += len as usize;
                match kind {
                    Some(Kind::Bytes) => size_of::<Vec<u8>>() as u64 + len,
                    Some(Kind::Msg(inner)) => {
                        if depth >= MAX_DEPTH {
                            return Err("messages nested too deep".into());
                        }
                        *cost += inner.size as u64;
                        walk(body, inner, depth + 1, cost)?;
                        0
                    }
                    Some(Kind::Varints) => 8 * body.iter().filter(|&&b| b < 0x80).count() as u64,
                    Some(Kind::Floats) => len,
                    Some(Kind::Scalar) | None => 0,
                }
            }
            w => {
                return Err(format!(
                    "wire type {w} (groups are not used by ONNX) in field {field}"
                ))
            }
        };
        *cost += add;
        if *cost > MAX_DECODED_BYTES {
            return Err(format!(
                "decoding would allocate over {MAX_DECODED_BYTES} bytes"
            ));
        }
    }
    Ok(())
}
