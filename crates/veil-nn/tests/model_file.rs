//! The bundled model, its reproducibility, and the model file's validation.

use veil_nn::data::digits_split;
use veil_nn::format::ModelError;
use veil_nn::quant::QuantSpec;
use veil_nn::train::{build_model, TrainConfig};
use veil_nn::{accuracy, bundled_model, Model};

const BUNDLED: &str = include_str!("../../../models/digits.json");

#[test]
fn bundled_model_meets_accuracy_targets() {
    let model = bundled_model().expect("bundled model loads");
    let test = digits_split().test;
    let float = accuracy(&test.samples, |s| model.predict_float(&s.pixels));
    let quant = accuracy(&test.samples, |s| model.predict(&s.pixels));
    assert!(float >= 0.96, "float accuracy {float}");
    assert!(quant >= 0.95, "quantized accuracy {quant}");
    assert_eq!(float, model.training.float_test_accuracy);
    assert_eq!(quant, model.training.quantized_test_accuracy);
}

#[test]
fn default_training_reproduces_the_bundled_model_bit_for_bit() {
    let model = build_model(
        &digits_split(),
        &TrainConfig::default(),
        QuantSpec::default(),
        "digits-mlp",
        |_| {},
    );
    assert_eq!(
        model.to_json(),
        BUNDLED,
        "`veil train` no longer reproduces models/digits.json"
    );
}

#[test]
fn save_and_load_round_trip() {
    let model = bundled_model().unwrap();
    let dir = std::env::temp_dir().join(format!("veil-nn-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.json");
    model.save(&path).unwrap();
    assert_eq!(Model::load(&path).unwrap(), model);
    let missing = Model::load(&dir.join("absent.json")).unwrap_err();
    assert!(matches!(missing, ModelError::Io { .. }), "{missing}");
    std::fs::remove_dir_all(&dir).ok();
}

fn edit(f: impl FnOnce(&mut serde_json::Value)) -> Result<Model, ModelError> {
    let mut v: serde_json::Value = serde_json::from_str(BUNDLED).unwrap();
    f(&mut v);
    Model::from_json(&v.to_string())
}

#[test]
fn truncated_files_are_syntax_errors() {
    for cut in [0, 1, 100, BUNDLED.len() / 2, BUNDLED.len() - 3] {
        let e = Model::from_json(&BUNDLED[..cut]).unwrap_err();
        assert!(matches!(e, ModelError::Syntax(_)), "cut at {cut}: {e}");
    }
}

#[test]
fn wrong_format_or_version_is_named() {
    let e = edit(|v| v["format"] = "onnx".into()).unwrap_err();
    assert!(matches!(e, ModelError::NotAModel), "{e}");
    let e = edit(|v| v["version"] = 3.into()).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::UnsupportedVersion {
                found: 3,
                supported: 2
            }
        ),
        "{e}"
    );
    assert!(e.to_string().contains("unsupported model version 3"));
    // A version-1 body under version 2 is a schema error that names the field.
    let e = edit(|v| v["version"] = 2.into()).unwrap_err();
    assert!(matches!(e, ModelError::Schema(_)), "{e}");
    let e = Model::from_json("[1, 2, 3]").unwrap_err();
    assert!(matches!(e, ModelError::NotAModel), "{e}");
}

#[test]
fn schema_errors() {
    let e = edit(|v| v["extra"] = 1.into()).unwrap_err();
    assert!(matches!(e, ModelError::Schema(_)), "{e}");
    let e = edit(|v| v["quantized"]["layers"][0]["weights"][0] = 300.into()).unwrap_err();
    assert!(matches!(e, ModelError::Schema(_)), "{e}");
    let e = edit(|v| {
        v["quantized"].as_object_mut().unwrap().remove("input_bits");
    })
    .unwrap_err();
    assert!(matches!(e, ModelError::Schema(_)), "{e}");
}

type Edit = Box<dyn FnOnce(&mut serde_json::Value)>;

#[test]
fn shape_errors() {
    let cases: Vec<(&str, Edit)> = vec![
        (
            "missing weight",
            Box::new(|v| {
                v["quantized"]["layers"][1]["weights"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "float missing bias",
            Box::new(|v| {
                v["float"]["layers"][0]["bias"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
        ),
        (
            "widths do not chain",
            Box::new(|v| v["quantized"]["layers"][1]["inputs"] = 23.into()),
        ),
        (
            "weight wider than declared",
            Box::new(|v| v["quantized"]["layers"][0]["weights"][3] = 9.into()),
        ),
        (
            "hidden layer without requant",
            Box::new(|v| v["quantized"]["layers"][0]["requant"] = serde_json::Value::Null),
        ),
        (
            "output layer with requant",
            Box::new(|v| {
                v["quantized"]["layers"][1]["requant"] =
                    serde_json::json!({"shift": 1, "out_bits": 2})
            }),
        ),
        (
            "input bits",
            Box::new(|v| v["quantized"]["input_bits"] = 0.into()),
        ),
        (
            "accumulator beyond 32 bits",
            Box::new(|v| v["quantized"]["layers"][1]["bias"][0] = i32::MAX.into()),
        ),
        (
            "no layers",
            Box::new(|v| v["quantized"]["layers"] = serde_json::json!([])),
        ),
    ];
    for (what, f) in cases {
        let e = edit(f).unwrap_err();
        assert!(matches!(e, ModelError::Shape(_)), "{what}: {e}");
    }
}
