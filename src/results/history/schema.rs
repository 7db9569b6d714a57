//! The history database's schema: its application id, and the ordered migrations that build
//! it. `PRAGMA user_version` holds the number of migrations applied; a database is brought to
//! [`LATEST`] by applying the missing ones in one transaction, and a database of a later
//! version (written by a newer llamaperf) is refused.

/// `PRAGMA application_id` of a llamaperf history database ("LPHI"): a SQLite file without it
/// belongs to something else and is never written.
pub const APPLICATION_ID: i32 = 0x4c50_4849;

/// The migrations, in order: the database's `user_version` is how many have been applied.
/// Never edit one that has shipped; append a new one.
pub const MIGRATIONS: &[&str] = &[
    // 1: machines, ingested folders, their runs, the runs' axes, metric values and
    // per-repetition samples.
    "CREATE TABLE machines (
        id INTEGER PRIMARY KEY,
        cpu_model TEXT NOT NULL,
        cores INTEGER NOT NULL,
        mem_gib INTEGER NOT NULL,
        kernel TEXT NOT NULL,
        UNIQUE (cpu_model, cores, mem_gib, kernel)
    );
    CREATE TABLE folders (
        id INTEGER PRIMARY KEY,
        path TEXT NOT NULL,
        label TEXT NOT NULL,
        git_commit TEXT NOT NULL,
        llamaperf_version TEXT NOT NULL,
        started_unix_s REAL NOT NULL,
        ingested_unix_s REAL NOT NULL
    );
    CREATE TABLE runs (
        id INTEGER PRIMARY KEY,
        folder INTEGER NOT NULL REFERENCES folders (id),
        machine INTEGER NOT NULL REFERENCES machines (id),
        host TEXT NOT NULL,
        run_id TEXT NOT NULL,
        instance INTEGER,
        status TEXT NOT NULL,
        reason TEXT NOT NULL,
        content_sha256 TEXT NOT NULL UNIQUE
    );
    CREATE INDEX runs_by_config ON runs (machine, run_id, instance);
    CREATE TABLE axes (
        run INTEGER NOT NULL REFERENCES runs (id),
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (run, key)
    );
    CREATE TABLE metrics (
        run INTEGER NOT NULL REFERENCES runs (id),
        metric TEXT NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (run, metric)
    );
    CREATE TABLE samples (
        run INTEGER NOT NULL REFERENCES runs (id),
        metric TEXT NOT NULL,
        repetition INTEGER NOT NULL,
        value REAL NOT NULL,
        PRIMARY KEY (run, metric, repetition)
    );",
];

/// The schema version this llamaperf writes and reads: the number of migrations.
pub const LATEST: u32 = MIGRATIONS.len() as u32;
