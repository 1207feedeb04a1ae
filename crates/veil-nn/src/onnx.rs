//! ONNX import: a float network exported by PyTorch, TensorFlow or any other ONNX writer,
//! read into a [`FloatGraph`].
//!
//! [`import_onnx`] decodes a serialized `ModelProto` (the `.onnx` file) and walks its graph.
//! The graph must be a **chain**: one model input, then each node consumes the previous node's
//! output (its other inputs being initializers or `Constant` nodes), and the last node's output
//! is the one graph output. The ops it accepts, and what each becomes:
//!
//! | ONNX | conditions | becomes |
//! |---|---|---|
//! | `Gemm` | `alpha = beta = 1`, `transA = 0`, `transB` 0 or 1, `B` (and `C`) initializers | [`FloatOp::Dense`] |
//! | `MatMul`, then `Add` | `B` a `K x M` initializer, the `Add`'s other operand an `M` bias | [`FloatOp::Dense`] |
//! | `Conv` | 2-D, `group = 1`, square kernel, equal strides, equal pads on all sides, dilations 1, `auto_pad` `NOTSET` or `VALID` | [`FloatOp::Conv2d`] |
//! | `AveragePool` | square kernel, equal strides, no padding, `ceil_mode = 0` | [`FloatOp::AvgPool`] |
//! | `Relu` | | [`FloatOp::Relu`] |
//! | `Flatten` | `axis = 1` | [`FloatOp::Flatten`] (nothing on a flat tensor) |
//! | `Reshape` | to `[0 \| 1 \| -1, k]` or `[0 \| 1, -1]` with `k = C*H*W`, the shape an initializer or `Constant` | [`FloatOp::Flatten`] |
//! | `Identity`, `Dropout` (inference) | | nothing |
//! | `Softmax`, `LogSoftmax` | the last node, over the class axis | nothing, with a note (the argmax is unchanged) |
//!
//! The model input is the one graph input that is not an initializer, of element type
//! `FLOAT` and shape `[N, C, H, W]` or `[N, F]`, the batch `N` symbolic or 1. Initializers are
//! `FLOAT` tensors with their data in `float_data` or `raw_data` (little-endian); the shape
//! of a `Reshape` may also be `INT64`. Anything else is an [`OnnxError`] that names the node
//! and what is wrong: an op outside the table above names the op and the supported set.
//!
//! The decoding never panics on any bytes and bounds what it allocates: the file is at most
//! [`MAX_ONNX_BYTES`], a pass over the protobuf wire format ([`wire`]) bounds what the decoder
//! allocates before it runs, a graph has at most [`MAX_NODES`] nodes and initializers, and
//! every tensor's element count is checked against its data (and [`MAX_TENSOR_ELEMENTS`])
//! before a weight vector is built. The result is checked by [`FloatGraph::validate`].
//!
//! The batch dimension is dropped: the graph maps one sample (`C x H x W` values, flattened
//! channel-major as ONNX stores them) to its outputs, which agree with onnxruntime's to
//! float rounding (`tests/onnx.rs` checks 1e-5 on real exports).
//!
//! References:
//! - ONNX IR specification (graph, nodes, initializers, value names, topological order):
//!   <https://github.com/onnx/onnx/blob/main/docs/IR.md>
//! - ONNX operators (`Gemm`, `MatMul`, `Add`, `Conv`, `AveragePool`, `Relu`, `Flatten`,
//!   `Reshape`, `Identity`, `Dropout`, `Softmax`, `LogSoftmax`, `Constant`):
//!   <https://github.com/onnx/onnx/blob/main/docs/Operators.md>
//! - The message definitions, `onnx/onnx.proto` of ONNX 1.17 (see [`proto`]):
//!   <https://github.com/onnx/onnx/blob/v1.17.0/onnx/onnx.proto>

pub mod proto;
pub mod wire;

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use prost::Message;

use crate::graph::{FloatGraph, FloatOp, GraphError, Shape};
use proto::{data_type, AttributeProto, NodeProto, TensorProto};

/// Largest `.onnx` file [`load_onnx`] reads.
pub const MAX_ONNX_BYTES: u64 = 256 << 20;

/// Most elements one initializer may hold.
pub const MAX_TENSOR_ELEMENTS: usize = 1 << 26;

/// Most nodes (and most initializers) a graph may have.
pub const MAX_NODES: usize = 4096;

/// The ops [`import_onnx`] accepts, for messages.
pub const SUPPORTED_OPS: &str = "Gemm, MatMul (+ Add), Conv, AveragePool, Relu, Flatten, \
    Reshape (flattening), Identity, Dropout, and a final Softmax or LogSoftmax";

/// The operators of the chain (a bias `Add` is read with its `MatMul`).
const KNOWN_OPS: &[&str] = &[
    "Gemm",
    "MatMul",
    "Conv",
    "AveragePool",
    "Relu",
    "Flatten",
    "Reshape",
    "Identity",
    "Dropout",
    "Softmax",
    "LogSoftmax",
];

/// An imported model.
#[derive(Clone, Debug, PartialEq)]
pub struct Imported {
    /// The float network (validated).
    pub graph: FloatGraph,
    /// What the import changed or assumed, e.g. a dropped final `Softmax`.
    pub notes: Vec<String>,
}

/// Why a model cannot be imported.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is larger than [`MAX_ONNX_BYTES`].
    #[error("{} is {size} bytes, over the {max}-byte limit for an ONNX model", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
        /// Its size.
        size: u64,
        /// The limit.
        max: u64,
    },
    /// The bytes are not a protobuf `ModelProto`.
    #[error("not an ONNX model (malformed protobuf): {0}")]
    Malformed(String),
    /// The model lacks something every ONNX model has, or has it twice.
    #[error("invalid ONNX model: {0}")]
    Invalid(String),
    /// A node's operator is outside the supported set.
    #[error(
        "node {node}: operator {op_type}{} is not supported (supported: {SUPPORTED_OPS})",
        if domain.is_empty() || domain == "ai.onnx" { String::new() } else { format!(" of domain {domain}") }
    )]
    UnsupportedOp {
        /// The node's name, or `#index`.
        node: String,
        /// Its operator.
        op_type: String,
        /// Its domain.
        domain: String,
    },
    /// A supported operator used in a way the graph cannot express.
    #[error("node {node} ({op_type}): {reason}")]
    Unsupported {
        /// The node's name, or `#index`.
        node: String,
        /// Its operator.
        op_type: String,
        /// What is not supported.
        reason: String,
    },
    /// An attribute with a value outside the supported range.
    #[error("node {node} ({op_type}): attribute {attribute} = {value} is not supported: {reason}")]
    Attribute {
        /// The node's name, or `#index`.
        node: String,
        /// Its operator.
        op_type: String,
        /// The attribute.
        attribute: String,
        /// Its value, as written.
        value: String,
        /// What is supported.
        reason: String,
    },
    /// A node's input shape does not match what its parameters or attributes require.
    #[error(
        "node {node} ({op_type}): shapes do not chain: it takes {expected}, its input is {found}"
    )]
    Shape {
        /// The node's name, or `#index`.
        node: String,
        /// Its operator.
        op_type: String,
        /// What the node takes.
        expected: String,
        /// What the previous node gives (or the model input).
        found: String,
    },
    /// The graph is not a single chain of nodes.
    #[error("the graph is not a chain: {0}")]
    NotAChain(String),
    /// A parameter is not an initializer (or `Constant`).
    #[error("node {node} ({op_type}): input {name} is not an initializer or a Constant")]
    MissingInitializer {
        /// The node's name, or `#index`.
        node: String,
        /// Its operator.
        op_type: String,
        /// The value name.
        name: String,
    },
    /// A tensor that cannot be read: wrong element type, sizes, external data.
    #[error("tensor {name}: {reason}")]
    Tensor {
        /// The tensor's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// The model input is not one float tensor `[N, C, H, W]` or `[N, F]`.
    #[error("model input: {0}")]
    Input(String),
    /// The imported graph fails [`FloatGraph::validate`].
    #[error("the imported graph is invalid: {0}")]
    Graph(#[from] GraphError),
}

/// Reads an `.onnx` file (at most [`MAX_ONNX_BYTES`]) and imports it ([`import_onnx`]).
pub fn load_onnx(path: &Path) -> Result<Imported, OnnxError> {
    let io = |source| OnnxError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = std::fs::File::open(path).map_err(io)?;
    let size = file.metadata().map_err(io)?.len();
    let too_large = |size| OnnxError::TooLarge {
        path: path.to_path_buf(),
        size,
        max: MAX_ONNX_BYTES,
    };
    if size > MAX_ONNX_BYTES {
        return Err(too_large(size));
    }
    let mut bytes = Vec::with_capacity(size as usize);
    file.take(MAX_ONNX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_ONNX_BYTES {
        return Err(too_large(bytes.len() as u64));
    }
    import_onnx(&bytes)
}

/// Imports a serialized ONNX `ModelProto` (see the module documentation for what it accepts).
pub fn import_onnx(bytes: &[u8]) -> Result<Imported, OnnxError> {
    if bytes.len() as u64 > MAX_ONNX_BYTES {
        return Err(OnnxError::Malformed(format!(
            "{} bytes, over the {MAX_ONNX_BYTES}-byte limit",
            bytes.len()
        )));
    }
    wire::check_model(bytes).map_err(OnnxError::Malformed)?;
    let model =
        proto::ModelProto::decode(bytes).map_err(|e| OnnxError::Malformed(e.to_string()))?;
    convert(&model)
}

// ---------------------------------------------------------------------------------------------
// Tensors and attributes
// ---------------------------------------------------------------------------------------------

fn tensor_err(t: &TensorProto, reason: impl Into<String>) -> OnnxError {
    OnnxError::Tensor {
        name: if t.name.is_empty() {
            "(unnamed)".into()
        } else {
            t.name.clone()
        },
        reason: reason.into(),
    }
}

/// The dimensions and element count of a tensor, checked.
fn dims_of(t: &TensorProto) -> Result<(Vec<usize>, usize), OnnxError> {
    if t.data_location == proto::DATA_LOCATION_EXTERNAL {
        return Err(tensor_err(
            t,
            "external data (a separate file) is not supported",
        ));
    }
    let mut dims = Vec::with_capacity(t.dims.len().min(8));
    let mut n: usize = 1;
    for &d in &t.dims {
        let d = usize::try_from(d).map_err(|_| tensor_err(t, format!("negative dimension {d}")))?;
        n = n
            .checked_mul(d)
            .filter(|&n| n <= MAX_TENSOR_ELEMENTS)
            .ok_or_else(|| {
                tensor_err(
                    t,
                    format!(
                        "dimensions {:?} exceed {MAX_TENSOR_ELEMENTS} elements",
                        t.dims
                    ),
                )
            })?;
        dims.push(d);
    }
    Ok((dims, n))
}

/// A `FLOAT` tensor: its dimensions and values.
fn float_tensor(t: &TensorProto) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
    let (dims, n) = dims_of(t)?;
    if t.data_type != data_type::FLOAT {
        return Err(tensor_err(
            t,
            format!(
                "element type {} ({}); only FLOAT parameters are supported",
                data_type::name(t.data_type),
                t.data_type
            ),
        ));
    }
    let values = if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * 4 {
            return Err(tensor_err(
                t,
                format!(
                    "{} raw bytes for {n} floats of dimensions {:?}",
                    t.raw_data.len(),
                    t.dims
                ),
            ));
        }
        t.raw_data
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        if t.float_data.len() != n {
            return Err(tensor_err(
                t,
                format!(
                    "{} floats for dimensions {:?} ({n} elements)",
                    t.float_data.len(),
                    t.dims
                ),
            ));
        }
        t.float_data.clone()
    };
    if let Some(v) = values.iter().find(|v| !v.is_finite()) {
        return Err(tensor_err(t, format!("holds the non-finite value {v}")));
    }
    Ok((dims, values))
}

/// An `INT64` (or `INT32`) tensor's values (a `Reshape` shape).
fn int_tensor(t: &TensorProto) -> Result<Vec<i64>, OnnxError> {
    let (_, n) = dims_of(t)?;
    let (width, typed): (usize, Vec<i64>) = match t.data_type {
        data_type::INT64 => (8, t.int64_data.clone()),
        data_type::INT32 => (4, t.int32_data.iter().map(|&v| i64::from(v)).collect()),
        other => {
            return Err(tensor_err(
                t,
                format!(
                    "element type {} where INT64 is expected",
                    data_type::name(other)
                ),
            ))
        }
    };
    if !t.raw_data.is_empty() {
        if t.raw_data.len() != n * width {
            return Err(tensor_err(
                t,
                format!(
                    "{} raw bytes for {n} integers of {width} bytes",
                    t.raw_data.len()
                ),
            ));
        }
        return Ok(t
            .raw_data
            .chunks_exact(width)
            .map(|c| {
                if width == 8 {
                    i64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]])
                } else {
                    i64::from(i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                }
            })
            .collect());
    }
    if typed.len() != n {
        return Err(tensor_err(
            t,
            format!("{} integers for {n} elements", typed.len()),
        ));
    }
    Ok(typed)
}

/// Whether a `BOOL` (or integer) scalar tensor is true (`Dropout`'s `training_mode`).
fn bool_tensor(t: &TensorProto) -> Result<bool, OnnxError> {
    let (_, n) = dims_of(t)?;
    if n != 1 {
        return Err(tensor_err(
            t,
            format!("{n} elements where one flag is expected"),
        ));
    }
    Ok(match t.data_type {
        data_type::BOOL => {
            t.raw_data.iter().any(|&v| v != 0) || t.int32_data.iter().any(|&v| v != 0)
        }
        _ => int_tensor(t)?.iter().any(|&v| v != 0),
    })
}

/// A node under conversion: attribute access and its label for messages.
struct Node<'a> {
    proto: &'a NodeProto,
    index: usize,
}

impl<'a> Node<'a> {
    fn new(proto: &'a NodeProto, index: usize) -> Node<'a> {
        Node { proto, index }
    }

    /// `'name'`, or `#index` for an unnamed node.
    fn label(&self) -> String {
        if self.proto.name.is_empty() {
            format!("#{}", self.index)
        } else {
            format!("'{}'", self.proto.name)
        }
    }

    fn op(&self) -> &str {
        &self.proto.op_type
    }

    fn unsupported(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            node: self.label(),
            op_type: self.op().to_string(),
            reason: reason.into(),
        }
    }

    fn bad_attr(&self, attribute: &str, value: impl Into<String>, reason: &str) -> OnnxError {
        OnnxError::Attribute {
            node: self.label(),
            op_type: self.op().to_string(),
            attribute: attribute.to_string(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    fn shape_err(&self, expected: impl Into<String>, found: &Value) -> OnnxError {
        OnnxError::Shape {
            node: self.label(),
            op_type: self.op().to_string(),
            expected: expected.into(),
            found: found.to_string(),
        }
    }

    /// Fails on any attribute not in `known` (so no attribute changes the meaning unseen).
    fn only_attrs(&self, known: &[&str]) -> Result<(), OnnxError> {
        match self
            .proto
            .attribute
            .iter()
            .find(|a| !known.contains(&a.name.as_str()))
        {
            Some(a) => Err(self.bad_attr(
                &a.name,
                "(set)",
                &format!("{} takes only {known:?} here", self.op()),
            )),
            None => Ok(()),
        }
    }

    fn attr(&self, name: &str) -> Option<&'a AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    fn check_type(&self, a: &AttributeProto, want: i32, what: &str) -> Result<(), OnnxError> {
        if a.r#type != proto::attribute_type::UNDEFINED && a.r#type != want {
            return Err(self.bad_attr(
                &a.name,
                format!("(attribute type {})", a.r#type),
                &format!("must be {what}"),
            ));
        }
        Ok(())
    }

    fn int(&self, name: &str, default: i64) -> Result<i64, OnnxError> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) => {
                self.check_type(a, proto::attribute_type::INT, "an integer")?;
                Ok(a.i)
            }
        }
    }

    fn float(&self, name: &str, default: f32) -> Result<f32, OnnxError> {
        match self.attr(name) {
            None => Ok(default),
            Some(a) => {
                self.check_type(a, proto::attribute_type::FLOAT, "a float")?;
                Ok(a.f)
            }
        }
    }

    fn ints(&self, name: &str) -> Result<Option<&'a [i64]>, OnnxError> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, proto::attribute_type::INTS, "a list of integers")?;
                Ok(Some(&a.ints))
            }
        }
    }

    fn string(&self, name: &str) -> Result<Option<&'a [u8]>, OnnxError> {
        match self.attr(name) {
            None => Ok(None),
            Some(a) => {
                self.check_type(a, proto::attribute_type::STRING, "a string")?;
                Ok(Some(&a.s))
            }
        }
    }

    /// Requires integer attribute `name` (default `default`) to equal one of `allowed`.
    fn int_in(&self, name: &str, default: i64, allowed: &[i64]) -> Result<i64, OnnxError> {
        let v = self.int(name, default)?;
        if !allowed.contains(&v) {
            return Err(self.bad_attr(name, v.to_string(), &format!("supported: {allowed:?}")));
        }
        Ok(v)
    }

    /// `auto_pad`: `NOTSET` (explicit pads) or `VALID` (no padding).
    fn auto_pad(&self) -> Result<bool, OnnxError> {
        match self.string("auto_pad")? {
            None | Some(b"NOTSET") => Ok(false),
            Some(b"VALID") => Ok(true),
            Some(other) => Err(self.bad_attr(
                "auto_pad",
                String::from_utf8_lossy(other),
                "supported: NOTSET (with explicit pads) or VALID",
            )),
        }
    }

    /// A pair attribute (`strides`, `kernel_shape`) that must have two equal entries.
    fn square(&self, name: &str, default: Option<usize>) -> Result<Option<usize>, OnnxError> {
        match self.ints(name)? {
            None => Ok(default),
            Some(v) => match v {
                [a0, a1] if a0 == a1 && *a0 >= 1 && *a0 <= crate::graph::MAX_KERNEL as i64 => {
                    Ok(Some(*a0 as usize))
                }
                _ => Err(self.bad_attr(
                    name,
                    format!("{v:?}"),
                    &format!(
                        "must be two equal values in 1..={} (a square 2-D window)",
                        crate::graph::MAX_KERNEL
                    ),
                )),
            },
        }
    }

    /// `pads` `[p, p, p, p]` (or absent: 0).
    fn pads(&self) -> Result<usize, OnnxError> {
        match self.ints("pads")? {
            None => Ok(0),
            Some(v) => match v {
                [p, rest @ ..]
                    if rest.len() == 3
                        && rest.iter().all(|q| q == p)
                        && *p >= 0
                        && *p <= crate::graph::MAX_KERNEL as i64 =>
                {
                    Ok(*p as usize)
                }
                _ => Err(self.bad_attr(
                    "pads",
                    format!("{v:?}"),
                    "must be four equal values (the same padding on every side)",
                )),
            },
        }
    }

    /// `dilations` absent or all 1.
    fn no_dilation(&self) -> Result<(), OnnxError> {
        if let Some(v) = self.ints("dilations")? {
            if v.iter().any(|&d| d != 1) {
                return Err(self.bad_attr("dilations", format!("{v:?}"), "supported: all 1"));
            }
        }
        Ok(())
    }

    /// The name of input `k`, if present and non-empty.
    fn input(&self, k: usize) -> Option<&'a str> {
        self.proto
            .input
            .get(k)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }
}

// ---------------------------------------------------------------------------------------------
// The graph walk
// ---------------------------------------------------------------------------------------------

/// The value flowing along the chain: a batch of flat vectors or of images.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Value {
    /// `[N, F]`.
    Flat(usize),
    /// `[N, C, H, W]`.
    Image(Shape),
}

impl Value {
    fn shape(&self) -> Shape {
        match *self {
            Value::Flat(n) => Shape::flat(n),
            Value::Image(s) => s,
        }
    }

    fn len(&self) -> usize {
        self.shape().len()
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Flat(n) => write!(f, "[N, {n}]"),
            Value::Image(s) => write!(f, "[N, {}, {}, {}]", s.channels, s.height, s.width),
        }
    }
}

/// Constant values by name: initializers and `Constant` nodes.
struct Constants<'a> {
    tensors: HashMap<&'a str, &'a TensorProto>,
}

impl<'a> Constants<'a> {
    fn get(&self, node: &Node<'_>, name: &str) -> Result<&'a TensorProto, OnnxError> {
        self.tensors
            .get(name)
            .copied()
            .ok_or_else(|| OnnxError::MissingInitializer {
                node: node.label(),
                op_type: node.op().to_string(),
                name: name.to_string(),
            })
    }

    fn float(&self, node: &Node<'_>, name: &str) -> Result<(Vec<usize>, Vec<f32>), OnnxError> {
        float_tensor(self.get(node, name)?)
    }
}

/// Checks the graph input's type and shape.
fn input_value(vi: &proto::ValueInfoProto, notes: &mut Vec<String>) -> Result<Value, OnnxError> {
    let err = |m: String| OnnxError::Input(format!("'{}': {m}", vi.name));
    let tt = vi
        .r#type
        .as_ref()
        .and_then(|t| t.tensor_type.as_ref())
        .ok_or_else(|| err("not a tensor (or no type given)".into()))?;
    if tt.elem_type != data_type::FLOAT {
        return Err(err(format!(
            "element type {}; only FLOAT inputs are supported",
            data_type::name(tt.elem_type)
        )));
    }
    let dims = &tt
        .shape
        .as_ref()
        .ok_or_else(|| err("no shape given (expected [N, C, H, W] or [N, F])".into()))?
        .dim;
    let show: Vec<String> = dims
        .iter()
        .map(|d| match (&d.dim_value, &d.dim_param) {
            (Some(v), _) => v.to_string(),
            (None, Some(p)) if !p.is_empty() => p.clone(),
            _ => "?".into(),
        })
        .collect();
    let shown = format!("[{}]", show.join(", "));
    if dims.len() != 2 && dims.len() != 4 {
        return Err(err(format!(
            "shape {shown}; expected [N, C, H, W] or [N, F]"
        )));
    }
    match dims[0].dim_value {
        None | Some(1) => {}
        Some(v) => {
            return Err(err(format!(
                "shape {shown}: the batch dimension is {v}; expected 1 or symbolic"
            )))
        }
    }
    let mut sizes = Vec::with_capacity(3);
    for (d, s) in dims[1..].iter().zip(&show[1..]) {
        match d.dim_value {
            Some(v) if v >= 1 && v <= crate::graph::MAX_TENSOR as i64 => sizes.push(v as usize),
            _ => {
                return Err(err(format!(
                    "shape {shown}: dimension {s} must be a fixed positive size"
                )))
            }
        }
    }
    let value = match sizes[..] {
        [f] => Value::Flat(f),
        [c, h, w] => Value::Image(Shape::image(c, h, w)),
        _ => unreachable!("two or four dimensions"),
    };
    if value.len() > crate::graph::MAX_TENSOR {
        return Err(err(format!("shape {shown} has too many values")));
    }
    if dims[0].dim_value.is_none() {
        notes.push(format!(
            "input '{}' {shown}: the batch dimension is symbolic; Veil evaluates one sample",
            vi.name
        ));
    }
    Ok(value)
}

/// The ops of the chain, built node by node.
struct Builder {
    value: Value,
    ops: Vec<FloatOp>,
}

impl Builder {
    fn dense(
        &mut self,
        node: &Node<'_>,
        weights: (Vec<usize>, Vec<f32>),
        transposed: bool,
        bias: Option<(Vec<usize>, Vec<f32>)>,
    ) -> Result<(), OnnxError> {
        let (dims, w) = weights;
        let k = match self.value {
            Value::Flat(k) => k,
            Value::Image(_) => {
                return Err(node.shape_err(
                    "a 2-D input [N, K] (a Flatten must come first)",
                    &self.value,
                ))
            }
        };
        let (rows, cols) = match dims[..] {
            [a, b] => (a, b),
            _ => {
                return Err(node.unsupported(format!(
                    "the weight must be a 2-D matrix, has dimensions {dims:?}"
                )))
            }
        };
        // ONNX computes A (N x K) times B (K x M), or B^T when transposed (B is M x K).
        let (kin, m) = if transposed {
            (cols, rows)
        } else {
            (rows, cols)
        };
        if kin != k {
            return Err(node.shape_err(
                format!("[N, {kin}] (its weight is {rows} x {cols})"),
                &self.value,
            ));
        }
        if m == 0 {
            return Err(node.unsupported("the weight has no output column"));
        }
        let weights = if transposed {
            w
        } else {
            let mut t = vec![0.0; w.len()];
            for i in 0..k {
                for j in 0..m {
                    t[j * k + i] = w[i * m + j];
                }
            }
            t
        };
        let bias = match bias {
            None => vec![0.0; m],
            Some((bd, b)) => broadcast_bias(node, &bd, b, m)?,
        };
        self.ops.push(FloatOp::Dense {
            outputs: m,
            weights,
            bias,
        });
        self.value = Value::Flat(m);
        Ok(())
    }

    fn flatten(&mut self) {
        if let Value::Image(s) = self.value {
            self.ops.push(FloatOp::Flatten);
            self.value = Value::Flat(s.len());
        }
    }

    /// Applies a windowed op's geometry to the current image.
    fn windowed(&mut self, node: &Node<'_>, op: FloatOp) -> Result<(), OnnxError> {
        let s = match self.value {
            Value::Image(s) => s,
            Value::Flat(_) => return Err(node.shape_err("a 4-D input [N, C, H, W]", &self.value)),
        };
        let out = op
            .geometry()
            .output_shape(s)
            .map_err(|reason| node.unsupported(format!("on input {}: {reason}", self.value)))?;
        self.ops.push(op);
        self.value = Value::Image(out);
        Ok(())
    }
}

/// A bias of `m` values: dimensions `[m]`, `[1, m]`, or one value broadcast (`[]`, `[1]`).
fn broadcast_bias(
    node: &Node<'_>,
    dims: &[usize],
    b: Vec<f32>,
    m: usize,
) -> Result<Vec<f32>, OnnxError> {
    let ok = match dims {
        [n] | [1, n] => *n == m || *n == 1,
        [] => true,
        _ => false,
    };
    if !ok {
        return Err(node.unsupported(format!(
            "the bias has dimensions {dims:?}; expected [{m}] or [1, {m}]"
        )));
    }
    Ok(if b.len() == 1 { vec![b[0]; m] } else { b })
}

fn convert(model: &proto::ModelProto) -> Result<Imported, OnnxError> {
    let graph = model
        .graph
        .as_ref()
        .ok_or_else(|| OnnxError::Invalid("the model has no graph".into()))?;
    let mut notes = Vec::new();
    let opset = model
        .opset_import
        .iter()
        .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
        .map(|o| o.version)
        .ok_or_else(|| {
            OnnxError::Invalid("the model imports no default (ai.onnx) operator set".into())
        })?;
    if opset < 7 {
        return Err(OnnxError::Invalid(format!(
            "default operator set version {opset}; 7 or later is supported"
        )));
    }

    if graph.node.len() > MAX_NODES || graph.initializer.len() > MAX_NODES {
        return Err(OnnxError::Invalid(format!(
            "{} nodes and {} initializers; at most {MAX_NODES} of each are supported",
            graph.node.len(),
            graph.initializer.len()
        )));
    }

    // Constants: initializers, then Constant nodes.
    let mut constants = Constants {
        tensors: HashMap::new(),
    };
    for t in &graph.initializer {
        if constants.tensors.insert(t.name.as_str(), t).is_some() {
            return Err(OnnxError::Invalid(format!(
                "two initializers named '{}'",
                t.name
            )));
        }
    }
    let mut chain: Vec<Node<'_>> = Vec::new();
    for (k, n) in graph.node.iter().enumerate() {
        let node = Node::new(n, k);
        if n.op_type == "Constant" && (n.domain.is_empty() || n.domain == "ai.onnx") {
            node.only_attrs(&["value"])?;
            let t = node
                .attr("value")
                .and_then(|a| a.t.as_ref())
                .ok_or_else(|| {
                    node.unsupported("only a Constant with a tensor 'value' is supported")
                })?;
            let out = n
                .output
                .first()
                .ok_or_else(|| node.unsupported("no output"))?;
            if constants.tensors.insert(out.as_str(), t).is_some() {
                return Err(OnnxError::Invalid(format!("two constants named '{out}'")));
            }
        } else {
            chain.push(node);
        }
    }

    // The model input: the one graph input that is not an initializer.
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|vi| !constants.tensors.contains_key(vi.name.as_str()))
        .collect();
    let input = match inputs[..] {
        [one] => one,
        _ => {
            return Err(OnnxError::Input(format!(
                "{} graph inputs besides the initializers ({}); exactly one is supported",
                inputs.len(),
                inputs
                    .iter()
                    .map(|v| format!("'{}'", v.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    };
    let output = match &graph.output[..] {
        [one] => one.name.as_str(),
        outs => {
            return Err(OnnxError::NotAChain(format!(
                "{} graph outputs; exactly one is supported",
                outs.len()
            )))
        }
    };
    let start = input_value(input, &mut notes)?;

    // How many nodes read each value: every value along the chain must be read once.
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for n in &graph.node {
        for i in n.input.iter().filter(|i| !i.is_empty()) {
            *readers.entry(i.as_str()).or_default() += 1;
        }
    }

    let mut b = Builder {
        value: start,
        ops: Vec::new(),
    };
    let mut current: &str = input.name.as_str();
    let mut k = 0;
    while k < chain.len() {
        let node = &chain[k];
        let n = node.proto;
        let last = k + 1 == chain.len();
        if (!n.domain.is_empty() && n.domain != "ai.onnx") || !KNOWN_OPS.contains(&node.op()) {
            return Err(OnnxError::UnsupportedOp {
                node: node.label(),
                op_type: n.op_type.clone(),
                domain: n.domain.clone(),
            });
        }
        // The chain: the node reads the current value as its first input, and nothing else
        // reads it (a MatMul's bias Add is read with the MatMul, below).
        let reads_current = n.input.first().map(String::as_str) == Some(current);
        if !reads_current {
            return Err(OnnxError::NotAChain(format!(
                "node {} ({}) reads {:?}, not the previous output '{current}'",
                node.label(),
                n.op_type,
                n.input
            )));
        }
        let count = readers.get(current).copied().unwrap_or(0);
        if count != 1 || current == output {
            return Err(OnnxError::NotAChain(format!(
                "value '{current}' is read by {count} nodes{}; each value must feed only the next node",
                if current == output { " and is the graph output" } else { "" }
            )));
        }
        let mut consumed = 1;
        match n.op_type.as_str() {
            "Gemm" => {
                node.only_attrs(&["alpha", "beta", "transA", "transB"])?;
                for name in ["alpha", "beta"] {
                    let v = node.float(name, 1.0)?;
                    if v != 1.0 {
                        return Err(node.bad_attr(name, v.to_string(), "supported: 1"));
                    }
                }
                node.int_in("transA", 0, &[0])?;
                let trans_b = node.int_in("transB", 0, &[0, 1])? == 1;
                let w_name = node
                    .input(1)
                    .ok_or_else(|| node.unsupported("no input B"))?;
                let w = constants.float(node, w_name)?;
                let bias = match node.input(2) {
                    Some(c) => Some(constants.float(node, c)?),
                    None => None,
                };
                b.dense(node, w, trans_b, bias)?;
            }
            "MatMul" => {
                node.only_attrs(&[])?;
                let w_name = node
                    .input(1)
                    .ok_or_else(|| node.unsupported("no input B"))?;
                let w = constants.float(node, w_name)?;
                // A following Add of a constant is the bias.
                let out = n.output.first().map(String::as_str).unwrap_or_default();
                let add = chain.get(k + 1).filter(|a| {
                    a.op() == "Add"
                        && (a.proto.domain.is_empty() || a.proto.domain == "ai.onnx")
                        && !out.is_empty()
                        && a.proto.input.len() == 2
                        && a.proto.input.iter().any(|i| i == out)
                        && readers.get(out).copied() == Some(1)
                        && out != output
                });
                match add {
                    Some(add) => {
                        add.only_attrs(&[])?;
                        let other = add
                            .proto
                            .input
                            .iter()
                            .find(|i| *i != out)
                            .ok_or_else(|| add.unsupported("adds a value to itself"))?;
                        let bias = constants.float(add, other)?;
                        b.dense(node, w, false, Some(bias))?;
                        notes.push(format!(
                            "MatMul {} and Add {} merged into one dense layer",
                            node.label(),
                            add.label()
                        ));
                        consumed = 2;
                    }
                    None => {
                        b.dense(node, w, false, None)?;
                        notes.push(format!("MatMul {} has no bias Add: bias 0", node.label()));
                    }
                }
            }
            "Conv" => {
                node.only_attrs(&[
                    "auto_pad",
                    "dilations",
                    "group",
                    "kernel_shape",
                    "pads",
                    "strides",
                ])?;
                let valid = node.auto_pad()?;
                node.int_in("group", 1, &[1])?;
                node.no_dilation()?;
                let stride = node.square("strides", Some(1))?.unwrap_or(1);
                let padding = node.pads()?;
                if valid && padding != 0 {
                    return Err(node.unsupported("auto_pad VALID with nonzero pads"));
                }
                let w_name = node
                    .input(1)
                    .ok_or_else(|| node.unsupported("no input W"))?;
                let (wd, weights) = constants.float(node, w_name)?;
                let (m, c, kh, kw) = match wd[..] {
                    [m, c, kh, kw] => (m, c, kh, kw),
                    _ => {
                        return Err(node.unsupported(format!(
                            "weight dimensions {wd:?}; only 2-D convolutions (W of 4 dimensions) are supported"
                        )))
                    }
                };
                if kh != kw {
                    return Err(node.unsupported(format!(
                        "kernel {kh}x{kw}; only square kernels are supported"
                    )));
                }
                if let Some(ks) = node.square("kernel_shape", None)? {
                    if ks != kh {
                        return Err(node.unsupported(format!(
                            "kernel_shape {ks} disagrees with the weight's {kh}x{kw}"
                        )));
                    }
                }
                match b.value {
                    Value::Image(s) if s.channels == c => {}
                    _ => {
                        return Err(node.shape_err(
                            format!("[N, {c}, H, W] (its weight is {m}x{c}x{kh}x{kw})"),
                            &b.value,
                        ))
                    }
                }
                let bias = match node.input(2) {
                    Some(name) => {
                        let (bd, bv) = constants.float(node, name)?;
                        if bd != [m] {
                            return Err(
                                node.unsupported(format!("bias dimensions {bd:?}; expected [{m}]"))
                            );
                        }
                        bv
                    }
                    None => vec![0.0; m],
                };
                b.windowed(
                    node,
                    FloatOp::Conv2d {
                        out_channels: m,
                        kernel: kh,
                        stride,
                        padding,
                        weights,
                        bias,
                    },
                )?;
            }
            "AveragePool" => {
                node.only_attrs(&[
                    "auto_pad",
                    "ceil_mode",
                    "count_include_pad",
                    "dilations",
                    "kernel_shape",
                    "pads",
                    "strides",
                ])?;
                node.auto_pad()?;
                node.int_in("ceil_mode", 0, &[0])?;
                node.no_dilation()?;
                if node.pads()? != 0 {
                    return Err(node.bad_attr(
                        "pads",
                        format!("{:?}", node.ints("pads")?.unwrap_or_default()),
                        "average pooling without padding only",
                    ));
                }
                let kernel = node
                    .square("kernel_shape", None)?
                    .ok_or_else(|| node.unsupported("no kernel_shape"))?;
                let stride = node.square("strides", Some(1))?.unwrap_or(1);
                b.windowed(node, FloatOp::AvgPool { kernel, stride })?;
            }
            "Relu" => {
                node.only_attrs(&[])?;
                b.ops.push(FloatOp::Relu);
            }
            "Flatten" => {
                node.only_attrs(&["axis"])?;
                let rank = if matches!(b.value, Value::Flat(_)) {
                    2
                } else {
                    4
                };
                let axis = node.int("axis", 1)?;
                if axis != 1 && axis + rank != 1 {
                    return Err(node.bad_attr(
                        "axis",
                        axis.to_string(),
                        "supported: 1 (keep the batch dimension)",
                    ));
                }
                b.flatten();
            }
            "Reshape" => {
                node.only_attrs(&["allowzero"])?;
                let allow_zero = node.int_in("allowzero", 0, &[0, 1])? == 1;
                let s_name = node
                    .input(1)
                    .ok_or_else(|| node.unsupported("no shape input"))?;
                let target = int_tensor(constants.get(node, s_name)?)?;
                let k = b.value.len() as i64;
                let batch_ok = |v: i64| v == 1 || (v == 0 && !allow_zero);
                let flattens = match target[..] {
                    [a, c] => (batch_ok(a) && (c == k || c == -1)) || (a == -1 && c == k),
                    _ => false,
                };
                if !flattens {
                    return Err(node.shape_err(
                        format!(
                            "a reshape to {target:?}; only a flattening reshape to [N, -1], [1, {k}] or [-1, {k}] is supported"
                        ),
                        &b.value,
                    ));
                }
                b.flatten();
            }
            "Identity" => node.only_attrs(&[])?,
            "Dropout" => {
                node.only_attrs(&["ratio", "seed", "is_test"])?;
                if let Some(t) = node.input(2) {
                    if bool_tensor(constants.get(node, t)?)? {
                        return Err(node.unsupported("training_mode is true"));
                    }
                }
                if n.output
                    .iter()
                    .skip(1)
                    .any(|m| readers.contains_key(m.as_str()))
                {
                    return Err(node.unsupported("its mask output is used"));
                }
            }
            "Softmax" | "LogSoftmax" => {
                if !last {
                    return Err(node
                        .unsupported(format!("{} is supported only as the last node", n.op_type)));
                }
                node.only_attrs(&["axis"])?;
                let axis = node.int("axis", if opset >= 13 { -1 } else { 1 })?;
                if !matches!(b.value, Value::Flat(_)) || !(axis == 1 || axis == -1) {
                    return Err(node.unsupported(format!(
                        "{} over axis {axis} of {}; only over the classes of [N, classes]",
                        n.op_type, b.value
                    )));
                }
                notes.push(format!(
                    "dropped the final {} {} (the predicted class, the argmax, is unchanged)",
                    n.op_type,
                    node.label()
                ));
            }
            _ => {
                return Err(OnnxError::UnsupportedOp {
                    node: node.label(),
                    op_type: n.op_type.clone(),
                    domain: n.domain.clone(),
                })
            }
        }
        if b.ops.len() > crate::graph::MAX_OPS {
            return Err(OnnxError::Invalid(format!(
                "more than {} ops; a Veil graph holds at most that many",
                crate::graph::MAX_OPS
            )));
        }
        let tail = &chain[k + consumed - 1];
        current = tail
            .proto
            .output
            .first()
            .map(String::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| tail.unsupported("no output"))?;
        k += consumed;
    }
    if current != output {
        return Err(OnnxError::NotAChain(format!(
            "the graph output is '{output}', but the chain ends at '{current}'"
        )));
    }
    let graph = FloatGraph {
        input: start.shape(),
        ops: b.ops,
    };
    graph.validate()?;
    Ok(Imported { graph, notes })
}
