//! `llamaperf calibrate` and the roofline columns it feeds.

use crate::util::{llamaperf, records, stderr_of, summary, sweep_ok};
use llamaperf::calibrate::Calibration;
use llamaperf::model::flops::{decode_bytes_per_step, prefill_flops};
use llamaperf::model::KvDtype;
use llamaperf::results::Outcome;

#[test]
fn calibration_values_are_inside_physical_bounds_and_saved() {
    let cache = tempfile::tempdir().unwrap();
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", cache.path())
        .args([
            "calibrate",
            "--cores",
            "1",
            "--dtypes",
            "q8_0,f32",
            "--buffer-mb",
            "64",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let c: Calibration = serde_json::from_slice(&out.stdout).unwrap();
    let b = &c.bandwidth[0];
    assert_eq!((b.scope.as_str(), b.cores), ("machine", 1));
    // One core of any machine of this decade streams between 1 and 200 GB/s.
    assert!(
        (1.0..200.0).contains(&b.read_gb_s),
        "read {} GB/s",
        b.read_gb_s
    );
    assert!(
        (1.0..200.0).contains(&b.triad_gb_s),
        "triad {} GB/s",
        b.triad_gb_s
    );
    let gemm = &c.compute[0].results;
    assert_eq!(gemm.len(), 2);
    // One core: between 0.5 GFLOP/s and 5 TFLOP/s (AMX-class).
    assert!(
        gemm.iter().all(|r| (0.5..5000.0).contains(&r.gflop_s)),
        "{gemm:?}"
    );
    let saved = std::fs::read_dir(cache.path().join("calibration"))
        .unwrap()
        .count();
    assert_eq!(saved, 1);
}

#[test]
fn sweep_results_carry_roofline_columns_from_their_calibration() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = sweep_ok(
        tmp.path(),
        "[defaults]\nmodel = \"tiny\"\nprompt_tokens = 32\ngen_tokens = 8\nrepetitions = 2\n",
    );
    let calibration: Calibration =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("calibration.json")).unwrap())
            .unwrap();
    let line = records(&out_dir).remove(0);
    let threads = line.spec.threads();
    let Outcome::Ok { record } = line.outcome else {
        panic!()
    };
    let row = summary(&out_dir).remove(0);
    let (c, s) = (&record.model.config, &record.summary);
    // tiny's embedding table is untied: a step reads one row of it, not the whole table
    let weights = record.model.step_reads.unwrap();
    assert_eq!(weights.rows, 32_000);
    let table = weights.rows * weights.row_bytes;
    assert_eq!(
        weights.bytes(1),
        record.model.weight_bytes - table + weights.row_bytes
    );
    let bytes = decode_bytes_per_step(c, &weights, 1, 32, 8, KvDtype::ENGINE);
    let gb_s = bytes / (s.tpot_ms.unwrap().mean / 1e3) / 1e9;
    let gflop_s = prefill_flops(c, 1, 32) / (s.ttft_ms.mean / 1e3) / 1e9;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(row.get("decode_gb_s").unwrap(), gb_s));
    assert!(close(row.get("prefill_gflop_s").unwrap(), gflop_s));
    // this host has no SMT siblings: one thread per core
    let shape = record.shape.unwrap();
    assert_eq!((shape.cores, shape.smt), (threads, false));
    let (cores, smt) = (shape.cores, shape.smt);
    // in cache when a step's weights and the KV cache at its last step fit in the L3 of its
    // cores; then no DRAM ceiling applies
    let kv = c.kv_bytes_per_token(KvDtype::ENGINE) * (32 + 8);
    let in_cache = weights.bytes(1) + kv <= shape.l3_bytes;
    assert_eq!(row.in_cache, Some(in_cache), "{shape:?}");
    if in_cache {
        assert_eq!(row.get("decode_pct_roofline"), None);
    } else {
        assert!(close(
            row.get("decode_pct_roofline").unwrap(),
            100.0 * gb_s / calibration.read_gb_s(cores, smt).unwrap()
        ));
    }
    let ceiling = calibration
        .gflop_s(llamaperf::model::WeightDtype::Q4K, cores, smt)
        .unwrap();
    assert!(close(
        row.get("prefill_pct_roofline").unwrap(),
        100.0 * gflop_s / ceiling
    ));
}
