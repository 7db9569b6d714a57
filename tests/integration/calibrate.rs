//! `llamaperf calibrate` and the roofline columns it feeds.

use crate::util::{llamaperf, records, skipped, stderr_of, summary, sweep_ok};
use llamaperf::calibrate::compute::GemmFlag;
use llamaperf::calibrate::Calibration;
use llamaperf::machine::{Machine, TopologySource};
use llamaperf::model::flops::{decode_bytes_per_step, prefill_flops};
use llamaperf::model::KvDtype;
use llamaperf::results::Outcome;
use llamaperf_engine::peak::PeakKernel;

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
    // a median with the spread of its passes; a doubt is only ever noise on one core
    assert!(gemm.iter().all(|r| r.spread_pct.is_some_and(|s| s >= 0.0)));
    assert!(gemm
        .iter()
        .all(|r| r.flags.iter().all(|f| *f == GemmFlag::Noisy)));
    // the ISA's peak: every kernel this CPU has, none it lacks
    assert_eq!((c.peak.len(), c.peak[0].cores), (1, 1));
    let has: Vec<PeakKernel> = PeakKernel::ALL
        .into_iter()
        .filter(|k| k.width_bits().is_some())
        .collect();
    let measured: Vec<PeakKernel> = c.peak[0].results.iter().map(|r| r.kernel).collect();
    assert_eq!(measured, has);
    // the engine's GEMM never beats the peak of the instruction it multiplies with
    for r in gemm {
        if let Some(roof) = c.isa_peak_gflop_s(r.dtype, 1, false) {
            assert!(r.gflop_s < roof, "{r:?} above the ISA peak {roof}");
        }
    }
    // one calibration saved (beside the lock file of the calibration that wrote it)
    let saved = std::fs::read_dir(cache.path().join("calibration"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("json".as_ref()))
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
    let bytes = decode_bytes_per_step(c, &weights, 1, 32, 8, KvDtype::F16);
    let gb_s = bytes / (s.tpot_ms.unwrap().mean / 1e3) / 1e9;
    let gflop_s = prefill_flops(c, 1, 0, 32) / (s.ttft_ms.mean / 1e3) / 1e9;
    let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * b.abs().max(1.0);
    assert!(close(row.get("decode_gb_s").unwrap(), gb_s));
    assert!(close(row.get("prefill_gflop_s").unwrap(), gflop_s));
    // this host has no SMT siblings: one thread per core
    let shape = record.shape.unwrap();
    assert_eq!((shape.cores, shape.smt), (threads, false));
    let (cores, smt) = (shape.cores, shape.smt);
    // in cache when a step's weights and the KV cache at its last step fit in the L3 of its
    // cores; then no DRAM ceiling applies
    let kv = c.kv_bytes_per_token(KvDtype::F16) * (32 + 8);
    let in_cache = weights.bytes(1) + kv <= shape.l3_bytes;
    assert_eq!(row.in_cache, Some(in_cache), "{shape:?}");
    if in_cache {
        assert_eq!(row.get("decode_pct_roofline"), None);
    } else {
        assert!(close(
            row.get("decode_pct_roofline").unwrap(),
            100.0 * gb_s / calibration.read_ceiling(&shape).unwrap()
        ));
    }
    let ceiling = calibration
        .gflop_s(llamaperf::model::WeightDtype::Q4K, cores, smt)
        .unwrap();
    assert!(close(
        row.get("prefill_pct_roofline").unwrap(),
        100.0 * gflop_s / ceiling
    ));
    match calibration.isa_peak_gflop_s(llamaperf::model::WeightDtype::Q4K, cores, smt) {
        Some(roof) => {
            assert!(close(
                row.get("prefill_pct_peak").unwrap(),
                100.0 * gflop_s / roof
            ));
            assert!(
                roof > ceiling,
                "the hard roof {roof} is above the GEMM's {ceiling}"
            );
            let out = llamaperf().arg("report").arg(&out_dir).output().unwrap();
            assert!(out.status.success(), "{}", stderr_of(&out));
            let report = std::fs::read_to_string(out_dir.join("report.md")).unwrap();
            assert!(report.contains("% of peak)"), "{report}");
        }
        None => skipped(
            "prefill_pct_peak",
            "this CPU has no 8-bit dot instruction (VNNI) to bound q4_k's prefill",
        ),
    }
}

/// Best GB/s of one unpinned thread summing `words` with a plain fold: no prefetch, no huge
/// pages, one stream, none of the calibration's code.
fn independent_read_gb_s(words: &[u64], passes: usize) -> f64 {
    (0..passes)
        .map(|_| {
            let start = std::time::Instant::now();
            let sum = std::hint::black_box(words)
                .iter()
                .fold(0u64, |s, w| s.wrapping_add(*w));
            std::hint::black_box(sum);
            (words.len() * 8) as f64 / start.elapsed().as_secs_f64() / 1e9
        })
        .fold(0f64, f64::max)
}

#[test]
fn calibrated_read_agrees_with_an_independent_reader_and_per_l3_domain() {
    let cache = tempfile::tempdir().unwrap();
    // 512 MiB, 16x this host's L3: memory, not a cache
    let words: Vec<u64> = (0..64u64 << 20).collect();
    // On the host likwid-bench's load_avx512 read 15.9-16.4 GB/s on one core and
    // calibrate 17.0: the calibration reads at least what a plain loop does (decode once
    // streamed more than the ceiling), and not many times more (a figure from a cache, which
    // reads 3-10x memory's rate). Other tests measure on the same cores meanwhile, so each
    // side keeps its best of up to 6 attempts (a shared host only takes cycles away; 3 were
    // too few on 2 cores beside the whole suite).
    let (mut best, mut plain) = (None::<(f64, Calibration, String)>, 0f64);
    for _ in 0..6 {
        let out = llamaperf()
            .env("LLAMAPERF_CACHE", cache.path())
            .args(["calibrate", "--cores", "1", "--dtypes", "q8_0", "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr_of(&out));
        let c: Calibration = serde_json::from_slice(&out.stdout).unwrap();
        let read = c.read_gb_s(1, false).unwrap();
        if best.as_ref().is_none_or(|(b, ..)| read > *b) {
            best = Some((read, c, stderr_of(&out)));
        }
        // many passes: the best is one that other tests' calibrations left alone
        plain = plain.max(independent_read_gb_s(&words, 24));
        let one_core = best.as_ref().unwrap().0;
        if one_core >= 0.8 * plain && one_core <= 4.0 * plain {
            break;
        }
    }
    let (one_core, c, err) = best.unwrap();
    assert!(
        one_core >= 0.8 * plain && one_core <= 4.0 * plain,
        "calibrate {one_core:.1} GB/s, a plain read {plain:.1} GB/s (best of 6 each)"
    );
    let machine = Machine::load(&TopologySource::ThisMachine).unwrap();
    let sets = llamaperf::calibrate::domains::domain_sets(&machine);
    assert_eq!(c.l3_read.len(), sets.len());
    if sets.is_empty() {
        skipped("read per L3 domain", "the topology reports no L3 cache");
        return;
    }
    for (p, s) in c.l3_read.iter().zip(&sets) {
        assert_eq!(
            (p.placement, &p.l3, p.cores),
            (s.placement, &s.l3, s.pus.len())
        );
        // a set reads at least about one core's worth, at most what its cores can each
        assert!(
            (0.5 * one_core..=1.5 * one_core * p.cores as f64).contains(&p.read_gb_s),
            "{p:?} against one core's {one_core:.1}"
        );
    }
    if sets.len() == 1 {
        assert!(err.contains("one L3 domain"), "{err}");
    }
}

#[test]
fn a_sweep_measures_the_data_types_its_saved_calibration_lacks() {
    let cache = tempfile::tempdir().unwrap();
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", cache.path())
        .args(["calibrate", "--cores", "1", "--dtypes", "q8_0"])
        .args(["--buffer-mb", "64"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr_of(&out));
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("s.toml");
    std::fs::write(
        &file,
        "name = \"fill\"\n[defaults]\nmodel = \"tiny\"\ndtype = \"q4_k\"\ncores = 1\nprompt_tokens = 16\ngen_tokens = 4\n",
    )
    .unwrap();
    let out_dir = tmp.path().join("out");
    let out = llamaperf()
        .env("LLAMAPERF_CACHE", cache.path())
        .arg("sweep")
        .arg(&file)
        .arg("--out")
        .arg(&out_dir)
        .output()
        .unwrap();
    let err = stderr_of(&out);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("calibrating: GEMM, 1 cores"), "{err}");
    let calibration: Calibration =
        serde_json::from_str(&std::fs::read_to_string(out_dir.join("calibration.json")).unwrap())
            .unwrap();
    let dtypes: Vec<_> = calibration.compute[0]
        .results
        .iter()
        .map(|r| r.dtype.name())
        .collect();
    assert_eq!(dtypes, ["q8_0", "q4_k"]);
    let row = summary(&out_dir).remove(0);
    assert!(row.get("prefill_pct_roofline").is_some());
}
