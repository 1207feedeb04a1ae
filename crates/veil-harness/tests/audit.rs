//! The membership audit against Veil's own models: no empirical lower bound exceeds the
//! accountant's epsilon of a DP model, and the undefended bundled model shows a leak.

use veil_harness::audit::{digits_mlp, extraction, membership, Answer, Target};
use veil_nn::data::digits_split;
use veil_nn::float::FloatModel;
use veil_nn::train::{build_private_model, PrivacyTarget, TrainConfig};

fn recipe() -> TrainConfig {
    TrainConfig::private()
}

#[test]
fn no_lower_bound_exceeds_the_accountants_epsilon() {
    let split = digits_split();
    for (epsilon, seed) in [(1.0, 11u64), (8.0, 12)] {
        let target = PrivacyTarget {
            epsilon,
            delta: 1e-5,
            clip_norm: 1.0,
            accountant: veil_dp::AccountantKind::Rdp,
            noise_seed: Some(seed),
        };
        let spec = veil_nn::quant::QuantSpec::default();
        let m = build_private_model(&split, &recipe(), &target, spec, "dp", |_| {}).unwrap();
        let float = FloatModel::from_graph(&m.float).unwrap();
        let p = m.training.privacy.clone().unwrap();
        let report = membership(
            &Target {
                float: &float,
                config: recipe(),
                privacy: Some((p.epsilon, p.delta)),
            },
            &split.train,
            &split.test,
            4,
            seed,
            &mut (),
        )
        .unwrap();
        assert_eq!(report.accountant_epsilon, Some(p.epsilon));
        for a in &report.attacks {
            assert!(
                a.epsilon_lower_bound <= p.epsilon,
                "epsilon {epsilon}: {} shows {} > the accountant's {}",
                a.attack,
                a.epsilon_lower_bound,
                p.epsilon
            );
            assert!((0.3..0.7).contains(&a.auc), "{}: AUC {}", a.attack, a.auc);
        }
    }
}

#[test]
fn the_undefended_bundled_model_shows_a_leak() {
    let split = digits_split();
    let model =
        veil_nn::format::Model::from_json(include_str!("../../../models/digits.json")).unwrap();
    let (float, config) = digits_mlp(&model, "bundled").unwrap();
    let report = membership(
        &Target {
            float: &float,
            config,
            privacy: None,
        },
        &split.train,
        &split.test,
        4,
        1,
        &mut (),
    )
    .unwrap();
    assert_eq!(report.accountant_epsilon, None);
    let best = report
        .attacks
        .iter()
        .map(|a| a.epsilon_lower_bound)
        .fold(0.0, f64::max);
    assert!(best > 0.5, "{report:?}");
}

#[test]
fn a_surrogate_learns_the_model_from_its_answers() {
    let split = digits_split();
    let model =
        veil_nn::format::Model::from_json(include_str!("../../../models/digits.json")).unwrap();
    let (float, _) = digits_mlp(&model, "bundled").unwrap();
    let target = Target {
        float: &float,
        config: recipe(),
        privacy: None,
    };
    let served = |p: &[u8; 64]| model.predict(p);
    for answer in [Answer::Class, Answer::Logits] {
        let r = extraction(
            &target,
            &served,
            answer,
            &[20, 2000],
            &split.test,
            3,
            &mut (),
        )
        .unwrap();
        let (few, many) = (r.points[0].agreement, r.points[1].agreement);
        assert_eq!(r.test_images, 359);
        assert!(many > 0.6 && many > few, "{answer:?}: {few} then {many}");
    }
}
