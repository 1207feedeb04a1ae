//! ONNX import against real exports: the fixtures in `tests/fixtures/onnx/` were written by
//! `torch.onnx.export` and their reference outputs computed by onnxruntime
//! (`tools/onnx/make_fixtures.py`). Also: the errors, and hostile bytes.

use std::path::{Path, PathBuf};

use prost::Message;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use veil_nn::graph::{FloatOp, Shape};
use veil_nn::onnx::proto::{
    data_type, AttributeProto, Dimension, GraphProto, ModelProto, NodeProto, OperatorSetIdProto,
    TensorProto, TensorShapeProto, TypeProto, TypeProtoTensor, ValueInfoProto,
};
use veil_nn::onnx::{import_onnx, load_onnx, Imported, OnnxError};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx")
        .join(name)
}

fn load(name: &str) -> Imported {
    load_onnx(&fixture(&format!("{name}.onnx")))
        .unwrap_or_else(|e| panic!("{name}.onnx does not import: {e}"))
}

/// The (input, output) pairs of `<name>.reference.json`.
fn references(name: &str) -> Vec<(Vec<f32>, Vec<f32>)> {
    let text = std::fs::read_to_string(fixture(&format!("{name}.reference.json"))).unwrap();
    let cases: Vec<serde_json::Value> = serde_json::from_str(&text).unwrap();
    let floats = |v: &serde_json::Value| -> Vec<f32> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect()
    };
    let cases: Vec<_> = cases
        .iter()
        .map(|c| (floats(&c["input"]), floats(&c["output"])))
        .collect();
    assert_eq!(cases.len(), 10, "{name}: 10 reference inputs");
    cases
}

fn softmax(v: &[f32]) -> Vec<f32> {
    let m = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let e: Vec<f64> = v.iter().map(|&x| f64::from(x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|&x| (x / s) as f32).collect()
}

/// Checks `forward` (after `post`) against onnxruntime on every reference input: within
/// 1e-5, absolute for values up to 1 and relative above.
fn agrees(name: &str, post: fn(&[f32]) -> Vec<f32>) -> Imported {
    let imported = load(name);
    let g = &imported.graph;
    g.validate().unwrap();
    for (k, (x, want)) in references(name).iter().enumerate() {
        assert_eq!(x.len(), g.input.len(), "{name}: input size");
        let got = post(&g.forward(x));
        assert_eq!(got.len(), want.len(), "{name}: output size");
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            let tol = 1e-5 * b.abs().max(1.0);
            assert!(
                (a - b).abs() <= tol,
                "{name}, input {k}, output {i}: Veil {a}, onnxruntime {b}"
            );
        }
    }
    imported
}

fn kinds(g: &veil_nn::graph::FloatGraph) -> Vec<&'static str> {
    g.geometries().iter().map(|g| g.name()).collect()
}

#[test]
fn digits_mlp_matches_onnxruntime_and_the_bundled_weights() {
    let imported = agrees("digits_mlp", <[f32]>::to_vec);
    let g = &imported.graph;
    assert_eq!(g.input, Shape::flat(64));
    assert_eq!(kinds(g), ["dense", "relu", "dense"]);

    // The weights are those of models/digits.json's float network, exactly.
    let json: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/digits.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let layers = json["float"]["layers"].as_array().unwrap();
    let dense: Vec<_> = g
        .ops
        .iter()
        .filter(|op| matches!(op, FloatOp::Dense { .. }))
        .collect();
    assert_eq!(dense.len(), layers.len());
    for (op, layer) in dense.iter().zip(layers) {
        let floats = |v: &serde_json::Value| -> Vec<f32> {
            v.as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap() as f32)
                .collect()
        };
        let FloatOp::Dense {
            outputs,
            weights,
            bias,
        } = op
        else {
            unreachable!()
        };
        assert_eq!(*outputs as u64, layer["outputs"].as_u64().unwrap());
        assert_eq!(*weights, floats(&layer["weights"]));
        assert_eq!(*bias, floats(&layer["bias"]));
    }
}

#[test]
fn digits_mlp2_matches_onnxruntime() {
    let imported = agrees("digits_mlp2", <[f32]>::to_vec);
    assert_eq!(
        kinds(&imported.graph),
        ["dense", "relu", "dense", "relu", "dense"]
    );
}

#[test]
fn reshape_matmul_add_and_softmax_match_onnxruntime() {
    // Input [N, 1, 8, 8], Reshape to [-1, 64], MatMul + Add, Relu, Gemm, Softmax: the
    // reference outputs are onnxruntime's probabilities, the import drops the Softmax.
    let imported = agrees("digits_softmax", softmax);
    assert_eq!(imported.graph.input, Shape::image(1, 8, 8));
    assert_eq!(
        kinds(&imported.graph),
        ["flatten", "dense", "relu", "dense"]
    );
    assert!(
        imported.notes.iter().any(|n| n.contains("Softmax")),
        "{:?}",
        imported.notes
    );
    // Same network as digits_mlp: same logits.
    let mlp = load("digits_mlp");
    for (x, _) in references("digits_mlp") {
        assert_eq!(imported.graph.forward(&x), mlp.graph.forward(&x));
    }
}

#[test]
fn fashion_cnn_matches_onnxruntime() {
    let imported = agrees("fashion_cnn", <[f32]>::to_vec);
    let g = &imported.graph;
    assert_eq!(g.input, Shape::image(1, 28, 28));
    assert!(kinds(g).contains(&"conv2d"), "{:?}", kinds(g));
    assert_eq!(g.classes(), 10);
}

#[test]
fn an_unsupported_op_is_named() {
    let err = load_onnx(&fixture("unsupported.onnx")).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, OnnxError::UnsupportedOp { .. }), "{err:?}");
    assert!(msg.contains("Sigmoid"), "{msg}");
    assert!(msg.contains("supported"), "{msg}");
    assert!(msg.contains("Gemm"), "the supported set is listed: {msg}");
}

#[test]
fn truncated_and_garbage_bytes_give_errors() {
    let bytes = std::fs::read(fixture("digits_mlp.onnx")).unwrap();
    assert!(import_onnx(&bytes).is_ok());
    // Every proper prefix: an error (never a panic).
    for n in 0..bytes.len() {
        assert!(
            import_onnx(&bytes[..n]).is_err(),
            "prefix of {n} bytes imports"
        );
    }
    // Random bytes, and the file with bytes overwritten: no panic; whatever imports is valid.
    let mut rng = ChaCha8Rng::seed_from_u64(1);
    for round in 0..3000 {
        let data: Vec<u8> = if round % 2 == 0 {
            (0..rng.random_range(0..2000))
                .map(|_| rng.random())
                .collect()
        } else {
            let mut b = bytes.clone();
            for _ in 0..rng.random_range(1..4) {
                let i = rng.random_range(0..b.len());
                b[i] = rng.random();
            }
            b
        };
        if let Ok(m) = import_onnx(&data) {
            m.graph.validate().unwrap();
        }
    }
    assert!(matches!(
        import_onnx(b"not a model"),
        Err(OnnxError::Malformed(_))
    ));
    assert!(load_onnx(Path::new("/nonexistent/model.onnx")).is_err());
}

// ---------------------------------------------------------------------------------------------
// Hand-written models: the error paths
// ---------------------------------------------------------------------------------------------

fn floats(name: &str, dims: &[i64], values: Vec<f32>) -> TensorProto {
    TensorProto {
        name: name.into(),
        dims: dims.to_vec(),
        data_type: data_type::FLOAT,
        float_data: values,
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str, attrs: Vec<AttributeProto>) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("{op}_{output}"),
        op_type: op.into(),
        attribute: attrs,
        ..Default::default()
    }
}

fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        ints: v.to_vec(),
        r#type: 7,
        ..Default::default()
    }
}

fn int(name: &str, v: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        i: v,
        r#type: 2,
        ..Default::default()
    }
}

fn value(name: &str, dims: &[Option<i64>]) -> ValueInfoProto {
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TypeProtoTensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto {
                    dim: dims
                        .iter()
                        .map(|d| Dimension {
                            dim_value: *d,
                            dim_param: d.is_none().then(|| "N".to_string()),
                        })
                        .collect(),
                }),
            }),
        }),
    }
}

fn model(
    input: &[Option<i64>],
    nodes: Vec<NodeProto>,
    inits: Vec<TensorProto>,
    out: &str,
) -> Vec<u8> {
    ModelProto {
        ir_version: 8,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: inits,
            input: vec![value("x", input)],
            output: vec![value(out, &[None, Some(1)])],
        }),
        ..Default::default()
    }
    .encode_to_vec()
}

/// x [N, 1, 4, 4] -> Conv(2 channels, 3x3, stride 1, pad 1, attrs) -> Relu -> Flatten -> Gemm.
fn conv_model(conv_attrs: Vec<AttributeProto>, gemm_inputs: usize) -> Vec<u8> {
    let w: Vec<f32> = (0..18).map(|i| (i as f32 - 9.0) / 10.0).collect();
    model(
        &[None, Some(1), Some(4), Some(4)],
        vec![
            node("Conv", &["x", "W", "B"], "c", conv_attrs),
            node("Relu", &["c"], "r", vec![]),
            node("Flatten", &["r"], "f", vec![]),
            node("Gemm", &["f", "G", "C"], "y", vec![int("transB", 1)]),
        ],
        vec![
            floats("W", &[2, 1, 3, 3], w),
            floats("B", &[2], vec![0.1, -0.1]),
            floats("G", &[3, gemm_inputs as i64], vec![0.01; 3 * gemm_inputs]),
            floats("C", &[3], vec![1.0, 2.0, 3.0]),
        ],
        "y",
    )
}

#[test]
fn a_hand_written_conv_net_imports_and_runs() {
    let conv = vec![
        ints("kernel_shape", &[3, 3]),
        ints("pads", &[1, 1, 1, 1]),
        ints("strides", &[1, 1]),
    ];
    let m = import_onnx(&conv_model(conv, 32)).unwrap();
    assert_eq!(kinds(&m.graph), ["conv2d", "relu", "flatten", "dense"]);
    let y = m.graph.forward(&[0.5; 16]);
    assert_eq!(y.len(), 3);
    // By hand: every conv output (interior and border) is >= 0 after the ReLU; the dense
    // layer adds 0.01 of their sum to 1, 2, 3.
    let s: f32 = m.graph.activations(&[0.5; 16])[2].iter().sum();
    for (j, v) in y.iter().enumerate() {
        assert!((v - (j as f32 + 1.0 + 0.01 * s)).abs() < 1e-4);
    }
}

#[test]
fn shapes_that_do_not_chain_name_the_node_and_both_shapes() {
    let conv = vec![ints("kernel_shape", &[3, 3]), ints("pads", &[1, 1, 1, 1])];
    let err = import_onnx(&conv_model(conv, 20)).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, OnnxError::Shape { .. }), "{msg}");
    assert!(msg.contains("Gemm_y"), "{msg}");
    assert!(msg.contains("[N, 20]") && msg.contains("[N, 32]"), "{msg}");
}

#[test]
fn unsupported_attributes_are_named() {
    for (attrs, needle) in [
        (vec![int("group", 2)], "group"),
        (vec![ints("dilations", &[2, 2])], "dilations"),
        (vec![ints("pads", &[1, 0, 1, 0])], "pads"),
        (vec![ints("strides", &[1, 2])], "strides"),
    ] {
        let err = import_onnx(&conv_model(attrs, 32)).unwrap_err();
        assert!(matches!(err, OnnxError::Attribute { .. }), "{err}");
        assert!(err.to_string().contains(needle), "{err}");
    }
}

#[test]
fn a_graph_that_is_not_a_chain_is_refused() {
    // y = Relu(x) + x: the input feeds two nodes.
    let bytes = model(
        &[None, Some(4)],
        vec![
            node("Relu", &["x"], "r", vec![]),
            node("Add", &["r", "x"], "y", vec![]),
        ],
        vec![],
        "y",
    );
    assert!(matches!(import_onnx(&bytes), Err(OnnxError::NotAChain(_))));
}

#[test]
fn parameters_must_be_float_initializers_of_the_declared_size() {
    let gemm = |inits: Vec<TensorProto>| {
        model(
            &[None, Some(4)],
            vec![node("Gemm", &["x", "W"], "y", vec![int("transB", 1)])],
            inits,
            "y",
        )
    };
    // Missing.
    let err = import_onnx(&gemm(vec![])).unwrap_err();
    assert!(matches!(err, OnnxError::MissingInitializer { .. }), "{err}");
    // Not float.
    let mut t = floats("W", &[2, 4], vec![]);
    t.data_type = data_type::INT64;
    t.int64_data = vec![1; 8];
    let err = import_onnx(&gemm(vec![t])).unwrap_err();
    assert!(err.to_string().contains("INT64"), "{err}");
    // Huge dimensions with no data: refused before any allocation.
    let err = import_onnx(&gemm(vec![floats("W", &[1 << 40, 1 << 40], vec![])])).unwrap_err();
    assert!(matches!(err, OnnxError::Tensor { .. }), "{err}");
    let err = import_onnx(&gemm(vec![floats("W", &[2, 4], vec![1.0; 7])])).unwrap_err();
    assert!(matches!(err, OnnxError::Tensor { .. }), "{err}");
    // raw_data, little-endian.
    let mut t = floats("W", &[2, 4], vec![]);
    t.raw_data = (0..8).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let m = import_onnx(&gemm(vec![t])).unwrap();
    assert_eq!(m.graph.forward(&[1.0, 0.0, 0.0, 1.0]), vec![3.0, 11.0]);
}

#[test]
fn many_empty_messages_are_refused_before_decoding() {
    // A graph of ten million empty nodes: 20 MB of input that would decode to gigabytes.
    let mut graph = Vec::new();
    for _ in 0..10_000_000 {
        graph.extend_from_slice(&[0x0a, 0x00]); // GraphProto.node, length 0
    }
    let mut bytes = vec![0x3a]; // ModelProto.graph
    let mut len = graph.len() as u64;
    while len >= 0x80 {
        bytes.push((len as u8) | 0x80);
        len >>= 7;
    }
    bytes.push(len as u8);
    bytes.extend_from_slice(&graph);
    assert!(matches!(import_onnx(&bytes), Err(OnnxError::Malformed(_))));
}

#[test]
fn no_op_nodes_and_a_final_log_softmax_are_dropped() {
    let mut dropout = node("Dropout", &["a"], "b", vec![]);
    dropout.output.push("mask".into());
    let bytes = model(
        &[Some(1), Some(4)],
        vec![
            node("Identity", &["x"], "a", vec![]),
            dropout,
            node("Gemm", &["b", "W"], "c", vec![]),
            node("LogSoftmax", &["c"], "y", vec![int("axis", 1)]),
        ],
        vec![floats("W", &[4, 2], (0..8).map(|i| i as f32).collect())],
        "y",
    );
    let m = import_onnx(&bytes).unwrap();
    assert_eq!(kinds(&m.graph), ["dense"]);
    // transB = 0: W is K x M, so output j is sum_i x_i W[i][j].
    assert_eq!(m.graph.forward(&[1.0, 0.0, 0.0, 1.0]), vec![6.0, 8.0]);
    assert!(
        m.notes.iter().any(|n| n.contains("LogSoftmax")),
        "{:?}",
        m.notes
    );

    // A Softmax before the end, and an Add that is not a MatMul's bias, are refused.
    let bytes = model(
        &[None, Some(4)],
        vec![
            node("Softmax", &["x"], "s", vec![]),
            node("Relu", &["s"], "y", vec![]),
        ],
        vec![],
        "y",
    );
    let err = import_onnx(&bytes).unwrap_err();
    assert!(err.to_string().contains("last node"), "{err}");
    let bytes = model(
        &[None, Some(4)],
        vec![node("Add", &["B", "x"], "y", vec![])],
        vec![floats("B", &[4], vec![1.0; 4])],
        "y",
    );
    let err = import_onnx(&bytes).unwrap_err();
    assert!(matches!(err, OnnxError::UnsupportedOp { .. }), "{err}");
    assert!(err.to_string().contains("Add"), "{err}");
}

#[test]
fn the_fashion_models_import() {
    // models/fashion/ (models/fashion/train.py): Veil's forward pass on these reproduces the
    // float test accuracies recorded in models/fashion/README.md.
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/fashion");
    let relus = |g: &veil_nn::graph::FloatGraph| -> usize {
        let shapes = g.validate().unwrap();
        g.ops
            .iter()
            .zip(&shapes[1..])
            .filter(|(op, _)| matches!(op, FloatOp::Relu))
            .map(|(_, s)| s.len())
            .sum()
    };
    let mlp = load_onnx(&dir.join("fashion_mlp.onnx")).unwrap().graph;
    assert_eq!(mlp.input, Shape::image(1, 28, 28));
    assert_eq!(
        kinds(&mlp),
        ["flatten", "dense", "relu", "dense", "relu", "dense"]
    );
    assert_eq!(relus(&mlp), 192);
    let cnn = load_onnx(&dir.join("fashion_cnn.onnx")).unwrap().graph;
    assert_eq!(cnn, load("fashion_cnn").graph, "the fixture is a copy");
    assert_eq!(
        kinds(&cnn),
        ["conv2d", "relu", "flatten", "dense", "relu", "dense"]
    );
    assert_eq!(relus(&cnn), 16 * 9 * 9 + 32);
}
