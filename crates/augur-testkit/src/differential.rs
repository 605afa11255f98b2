//! The randomized differential harness: a seeded workload of listings changes (inserts,
//! updates of any column, primary-key changes, deletes, re-inserts of a deleted key,
//! multi-statement transactions, TOASTed values, truncates, added columns, NULLs and
//! impossible values) runs against a real PostgreSQL while faults are injected (SIGKILL of
//! augur, PostgreSQL restarted fast or crashed, the walsender or the sink's backends
//! terminated). At the end the predicted table must equal the source row by row, each price
//! what `augur predict` says (or NULL where it refuses the row). A failure names its seed and
//! prints the statements and faults that replay it.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{Tansu, TestDb, TestPg};

/// A small seeded generator (xorshift64*), so every workload replays from its seed.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// `true` with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// A fault injected between two chunks of the workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// SIGKILL augur, then start it again.
    KillAugur,
    /// `pg_ctl restart -m fast` (SIGINT to the postmaster, then start).
    RestartFast,
    /// `pg_ctl restart -m immediate` (the server is killed, then started: crash recovery).
    RestartImmediate,
    /// `pg_terminate_backend` of augur's walsender.
    TerminateWalsender,
    /// `pg_terminate_backend` of the sink's connections.
    TerminateSink,
    /// SIGSTOP the Kafka broker for a while, then SIGCONT (the Kafka path only).
    PauseBroker,
}

const FAULTS: [Fault; 5] = [
    Fault::KillAugur,
    Fault::RestartFast,
    Fault::RestartImmediate,
    Fault::TerminateWalsender,
    Fault::TerminateSink,
];

/// One step of a workload: SQL to run, or a fault.
#[derive(Debug, Clone)]
pub enum Step {
    /// Statements run in one psql call.
    Sql(String),
    /// A fault.
    Fault(Fault),
    /// Wait until the predicted table equals the source (everything so far went through).
    Settle,
    /// Wait this long.
    Pause(Duration),
}

/// The source table's DDL: the original columns plus a free-text column; `model` and `notes`
/// stored out of line without compression, so long values are TOASTed.
pub const TABLE: &str = "CREATE TABLE car_data (id integer PRIMARY KEY, model text, year integer, price integer, \
    transmission text, mileage integer, fueltype text, tax integer, mpg double precision, enginesize double precision, notes text); \
    ALTER TABLE car_data ALTER COLUMN model SET STORAGE EXTERNAL, ALTER COLUMN notes SET STORAGE EXTERNAL";

/// What the generator believes the table holds (to write statements that cannot fail).
#[derive(Debug, Default)]
struct Model {
    live: BTreeSet<i64>,
    deleted: BTreeSet<i64>,
    next_id: i64,
    extra_columns: Vec<String>,
}

const MODELS: &[&str] = &[
    " Fiesta",
    " Focus",
    " Kuga",
    " EcoSport",
    " Mondeo",
    " Ka+",
    " Galaxy",
    "fiesta",
    " KUGA",
];
const GEARS: &[&str] = &["Manual", "Automatic", "Semi-Auto", "manual"];
const FUELS: &[&str] = &["Petrol", "Diesel", "Hybrid", "Electric", "petrol"];

fn long_text(rng: &mut Rng, prefix: &str) -> String {
    let mut s = String::from(prefix);
    while s.len() < 10_000 {
        s.push_str(&format!("{:016x}", rng.next()));
    }
    s
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

impl Model {
    fn value(&mut self, rng: &mut Rng, column: &str) -> String {
        if rng.pct(4) && column != "id" {
            return "NULL".into();
        }
        match column {
            "model" if rng.pct(12) => quote(&long_text(rng, " Fiesta ")),
            "model" if rng.pct(3) => "''".into(),
            "model" => quote(rng.pick::<&str>(MODELS)),
            "year" if rng.pct(5) => rng.pick(&["2060", "-5", "99999", "1899"]).to_string(),
            "year" => (2005 + rng.below(16)).to_string(),
            "price" => (1000 + rng.below(30_000)).to_string(),
            "transmission" => quote(rng.pick::<&str>(GEARS)),
            "mileage" if rng.pct(4) => rng.pick(&["-1", "2147483647"]).to_string(),
            "mileage" => rng.below(150_000).to_string(),
            "fueltype" => quote(rng.pick::<&str>(FUELS)),
            "tax" if rng.pct(3) => "-20".into(),
            "tax" => rng.pick(&["0", "20", "145", "150", "200"]).to_string(),
            "mpg" if rng.pct(3) => "0".into(),
            "mpg" => format!("{:.1}", 30.0 + rng.below(400) as f64 / 10.0),
            "enginesize" if rng.pct(4) => rng.pick(&["0", "60"]).to_string(),
            "enginesize" => rng.pick(&["1", "1.2", "1.5", "2", "2.3"]).to_string(),
            "notes" if rng.pct(30) => quote(&long_text(rng, "notes ")),
            "notes" => quote(&format!("n{}", rng.below(1000))),
            _ => rng.below(1000).to_string(),
        }
    }

    fn columns(&self) -> Vec<String> {
        let mut c: Vec<String> = [
            "model",
            "year",
            "price",
            "transmission",
            "mileage",
            "fueltype",
            "tax",
            "mpg",
            "enginesize",
            "notes",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        c.extend(self.extra_columns.iter().cloned());
        c
    }

    fn insert(&mut self, rng: &mut Rng, id: i64) -> String {
        let cols = self.columns();
        let vals: Vec<String> = cols.iter().map(|c| self.value(rng, c)).collect();
        self.live.insert(id);
        self.deleted.remove(&id);
        format!(
            "INSERT INTO car_data (id, {}) VALUES ({id}, {});",
            cols.join(", "),
            vals.join(", ")
        )
    }

    fn any_live(&self, rng: &mut Rng) -> Option<i64> {
        let n = self.live.len() as u64;
        (n > 0).then(|| {
            *self
                .live
                .iter()
                .nth(rng.below(n) as usize)
                .expect("in range")
        })
    }

    fn fresh_id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// One statement that cannot fail given the model.
    fn statement(&mut self, rng: &mut Rng) -> String {
        match rng.below(100) {
            0..35 => {
                let id = self.fresh_id();
                self.insert(rng, id)
            }
            35..62 => match self.any_live(rng) {
                Some(id) => self.update_columns(rng, id),
                None => self.statement(rng),
            },
            62..67 => match self.any_live(rng) {
                // Only the mileage changes: a long model or notes stays TOASTed, unchanged.
                Some(id) => format!(
                    "UPDATE car_data SET mileage = {} WHERE id = {id};",
                    rng.below(100_000)
                ),
                None => self.statement(rng),
            },
            67..80 => match self.any_live(rng) {
                Some(id) => self.delete(id),
                None => self.statement(rng),
            },
            80..85 => match self.any_live(rng) {
                Some(old) => self.change_key(old),
                None => self.statement(rng),
            },
            85..92 => match self.any_deleted(rng) {
                Some(id) => self.insert(rng, id),
                None => self.statement(rng),
            },
            92..94 => self.truncate(),
            94..96 if self.extra_columns.len() < 2 => self.add_column(),
            _ => self.transaction(rng),
        }
    }

    /// An update of one or two random columns of row `id`.
    fn update_columns(&mut self, rng: &mut Rng, id: i64) -> String {
        let cols = self.columns();
        let n = 1 + rng.below(2) as usize;
        let mut chosen: Vec<String> = Vec::new();
        for _ in 0..n {
            let c = rng.pick(&cols).clone();
            if !chosen.contains(&c) {
                chosen.push(c);
            }
        }
        let sets: Vec<String> = chosen
            .iter()
            .map(|c| format!("{c} = {}", self.value(rng, c)))
            .collect();
        format!("UPDATE car_data SET {} WHERE id = {id};", sets.join(", "))
    }

    /// A random deleted key, if any (draws from `rng` only when there is one).
    fn any_deleted(&self, rng: &mut Rng) -> Option<i64> {
        let n = self.deleted.len() as u64;
        (n > 0).then(|| {
            *self
                .deleted
                .iter()
                .nth(rng.below(n) as usize)
                .expect("in range")
        })
    }

    /// A delete of row `id`.
    fn delete(&mut self, id: i64) -> String {
        self.live.remove(&id);
        self.deleted.insert(id);
        format!("DELETE FROM car_data WHERE id = {id};")
    }

    /// A primary-key change of row `old` to a fresh key.
    fn change_key(&mut self, old: i64) -> String {
        let new = self.fresh_id();
        self.live.remove(&old);
        self.deleted.insert(old);
        self.live.insert(new);
        format!("UPDATE car_data SET id = {new} WHERE id = {old};")
    }

    /// A truncate of the whole table.
    fn truncate(&mut self) -> String {
        self.deleted.extend(self.live.iter().copied());
        self.live.clear();
        "TRUNCATE car_data;".into()
    }

    /// An added integer column `extra_N`.
    fn add_column(&mut self) -> String {
        let c = format!("extra_{}", self.extra_columns.len() + 1);
        self.extra_columns.push(c.clone());
        format!("ALTER TABLE car_data ADD COLUMN {c} integer;")
    }

    /// A transaction mixing several changes, often on one key.
    fn transaction(&mut self, rng: &mut Rng) -> String {
        let k = 2 + rng.below(4);
        let body: Vec<String> = (0..k).map(|_| self.statement(rng)).collect();
        format!("BEGIN; {} COMMIT;", body.join(" "))
    }
}

/// The workload of `seed`: initial rows (captured by the snapshot) and the steps after
/// augur started.
pub fn workload(seed: u64, faults: bool) -> (Vec<String>, Vec<Step>) {
    let mut rng = Rng::new(seed);
    let mut m = Model::default();
    let initial: Vec<String> = (0..rng.below(40))
        .map(|_| {
            let id = m.fresh_id();
            m.insert(&mut rng, id)
        })
        .collect();
    let chunks = 3 + rng.below(6);
    let mut steps = Vec::new();
    for _ in 0..chunks {
        let n = 1 + rng.below(12);
        let sql: Vec<String> = (0..n).map(|_| m.statement(&mut rng)).collect();
        steps.push(Step::Sql(sql.join("\n")));
        if faults && rng.pct(35) {
            steps.push(Step::Fault(*rng.pick(&FAULTS)));
        }
    }
    (initial, steps)
}

/// Where the harness finds augur and its model.
#[derive(Debug, Clone)]
pub struct Harness {
    /// The `augur` binary.
    pub augur: PathBuf,
    /// A folder for offsets and logs.
    pub scratch: PathBuf,
    /// Inject faults.
    pub faults: bool,
    /// Run `augur run` over a Kafka broker (a Tansu per seed) instead of embedded.
    pub kafka: bool,
    /// More arguments for `augur run`.
    pub extra: Vec<String>,
}

/// A seed that failed, with everything needed to replay it.
#[derive(Debug)]
pub struct Failure {
    /// The seed.
    pub seed: u64,
    /// What differed.
    pub diff: String,
    /// The replay: initial rows, then steps.
    pub replay: String,
    /// augur's log.
    pub log: String,
    /// A smaller workload that still fails ([`minimize`]), when one was looked for.
    pub minimal: Option<String>,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {} failed: {}\n--- replay (run augur, then these; faults as comments) ---\n{}\n--- augur log (tail) ---\n{}",
            self.seed,
            self.diff,
            self.replay,
            tail(&self.log, 60)
        )?;
        match &self.minimal {
            Some(m) => write!(f, "\n--- minimal replay (still fails) ---\n{m}"),
            None => Ok(()),
        }
    }
}

fn tail(s: &str, lines: usize) -> String {
    let all: Vec<&str> = s.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

struct Augur {
    child: Option<Child>,
    log: PathBuf,
    args: Vec<String>,
    bin: PathBuf,
    /// How many times the log said "streaming changes" when this process was started.
    streams_at_spawn: usize,
}

impl Augur {
    fn start(bin: &Path, args: Vec<String>, log: PathBuf) -> Augur {
        let mut a = Augur {
            child: None,
            log,
            args,
            bin: bin.to_path_buf(),
            streams_at_spawn: 0,
        };
        a.spawn();
        a
    }

    fn spawn(&mut self) {
        self.streams_at_spawn = self.streams();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .env("AUGUR_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        // A harness killed mid-seed (a soak stopped by hand) takes its augur with it.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start augur");
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// `Some(status)` when augur exited on its own.
    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn streams(&self) -> usize {
        self.log().matches("streaming changes").count()
    }

    /// Waits until this process has started streaming (a first connection that fails is an
    /// error for the user to fix, not a fault to survive).
    fn wait_streaming(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.streams() <= self.streams_at_spawn {
            if let Some(s) = self.exited() {
                return Err(format!("augur exited ({s}) before streaming"));
            }
            if Instant::now() >= deadline {
                return Err("augur did not start streaming within 30 s".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }
}

impl Drop for Augur {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Runs `cmd` with `input` on its stdin (written from a thread, so a large input cannot
/// deadlock against a full stdout) and returns its output.
fn piped(mut cmd: Command, input: String) -> Result<std::process::Output, String> {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("running {:?}: {e}", cmd.get_program()))?;
    let mut stdin = child.stdin.take().expect("piped");
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let _ = writer.join();
    Ok(out)
}

/// Runs `sql` (any length: it goes through stdin) in one psql session.
fn psql(pg: &TestPg, db: &TestDb, sql: &str) -> Result<String, String> {
    let mut cmd = Command::new(pg.cluster.bin_dir().join("psql"));
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d"])
        .arg(&db.url)
        .args(["-f", "-"])
        .stderr(Stdio::piped());
    let out = piped(cmd, sql.to_string())?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "psql: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Runs `sql`, retrying while the server is coming back from a fault.
fn psql_retry(pg: &TestPg, db: &TestDb, sql: &str) -> Result<String, String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match psql(pg, db, sql) {
            Ok(out) => return Ok(out),
            Err(e) if Instant::now() < deadline && transient(&e) => {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e),
        }
    }
}

fn transient(e: &str) -> bool {
    [
        "starting up",
        "shutting down",
        "Connection refused",
        "No such file",
        "terminating connection",
        "recovery",
    ]
    .iter()
    .any(|t| e.contains(t))
}

fn inject(
    fault: Fault,
    pg: &mut TestPg,
    db: &TestDb,
    augur: &mut Augur,
    broker: Option<&Tansu>,
) -> Result<(), String> {
    match fault {
        Fault::PauseBroker => {
            let broker = broker.ok_or("no broker to pause")?;
            broker.pause();
            std::thread::sleep(Duration::from_millis(1500));
            broker.resume();
        }
        Fault::KillAugur => {
            augur.kill();
            augur.spawn();
        }
        Fault::RestartFast => {
            let t = Instant::now();
            pg.cluster.stop().map_err(|e| e.to_string())?;
            let took = t.elapsed();
            if took > Duration::from_secs(5) {
                return Err(format!(
                    "pg_ctl stop -m fast took {took:?} (augur held the shutdown)"
                ));
            }
            pg.cluster.restart().map_err(|e| e.to_string())?;
        }
        Fault::RestartImmediate => {
            pg.cluster.crash();
            pg.cluster.restart().map_err(|e| e.to_string())?;
        }
        Fault::TerminateWalsender => {
            psql_retry(
                pg,
                db,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE backend_type = 'walsender'",
            )?;
        }
        Fault::TerminateSink => {
            psql_retry(
                pg,
                db,
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'augur:run-sink'",
            )?;
        }
    }
    Ok(())
}

/// The rows of `table` as id → JSON object (`None` when the table does not exist).
fn table_json(
    pg: &TestPg,
    db: &TestDb,
    table: &str,
) -> Option<BTreeMap<i64, serde_json::Map<String, Value>>> {
    let out = psql(
        pg,
        db,
        &format!("SELECT row_to_json(t)::text FROM {table} t"),
    )
    .ok()?;
    let mut rows = BTreeMap::new();
    for line in out.lines().filter(|l| !l.is_empty()) {
        let Ok(Value::Object(o)) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let id = o.get("id").and_then(Value::as_i64).unwrap_or(i64::MIN);
        rows.insert(id, o);
    }
    Some(rows)
}

/// The prices `augur predict` gives the source rows (`None` where it refuses a row).
fn predictions(
    augur: &Path,
    rows: &BTreeMap<i64, serde_json::Map<String, Value>>,
) -> Result<BTreeMap<i64, Option<f64>>, String> {
    let store = crate::workspace_root().join("models");
    let mut cmd = Command::new(augur);
    cmd.args(["predict", "--store"])
        .arg(&store)
        .args(["--model", "ford-price:1"])
        .stderr(Stdio::null());
    let mut input = String::new();
    for r in rows.values() {
        input.push_str(&Value::Object(r.clone()).to_string());
        input.push('\n');
    }
    let out = piped(cmd, input)?;
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    if lines.len() != rows.len() {
        return Err(format!(
            "augur predict answered {} of {} rows",
            lines.len(),
            rows.len()
        ));
    }
    Ok(rows
        .keys()
        .zip(lines)
        .map(|(id, v)| (*id, v.get("prediction").and_then(Value::as_f64)))
        .collect())
}

/// Compares `car_data_predicted` with `car_data` (as [`TABLE`] makes it): the same rows,
/// every source column equal, `suggestedprice` what `augur predict` (the binary `augur`)
/// says, NULL where it refuses the row. `Err` names the first differences.
pub fn compare(augur: &Path, pg: &TestPg, db: &TestDb) -> Result<(), String> {
    let src = table_json(pg, db, "car_data").ok_or("car_data is unreadable")?;
    let Some(dst) = table_json(pg, db, "car_data_predicted") else {
        return if src.is_empty() {
            Ok(())
        } else {
            Err("car_data_predicted does not exist".into())
        };
    };
    let mut diffs = Vec::new();
    for id in dst.keys().filter(|k| !src.contains_key(k)) {
        diffs.push(format!("id {id}: in car_data_predicted, not in car_data"));
    }
    let mut priced = BTreeMap::new();
    for (id, s) in &src {
        let Some(d) = dst.get(id) else {
            diffs.push(format!("id {id}: missing from car_data_predicted"));
            continue;
        };
        for (col, v) in s {
            // A column added to the source shows up downstream with the next change that
            // carries it (logical replication announces it then); until then it is all NULL.
            if d.get(col).is_none() && v.is_null() {
                continue;
            }
            if d.get(col) != Some(v) {
                let show = |v: Option<&Value>| {
                    let t = v.map(Value::to_string).unwrap_or("(absent)".into());
                    if t.len() > 60 {
                        format!("{}…({} chars)", &t[..60], t.len())
                    } else {
                        t
                    }
                };
                diffs.push(format!(
                    "id {id}: column {col}: source {} sink {}",
                    show(Some(v)),
                    show(d.get(col))
                ));
            }
        }
        priced.insert(*id, s.clone());
    }
    if diffs.is_empty() {
        let want = predictions(augur, &priced)?;
        for (id, p) in want {
            let got = dst[&id].get("suggestedprice").and_then(Value::as_f64);
            let ok = match (p, got) {
                (Some(p), Some(g)) => (p - g).abs() <= 0.006,
                (None, None) => true,
                _ => false,
            };
            if !ok {
                diffs.push(format!(
                    "id {id}: suggestedprice {got:?}, augur predict says {p:?}"
                ));
            }
        }
    }
    if diffs.is_empty() {
        Ok(())
    } else {
        let n = diffs.len();
        diffs.truncate(8);
        Err(format!("{n} difference(s): {}", diffs.join("; ")))
    }
}

fn replay(initial: &[String], steps: &[Step]) -> String {
    let mut out = String::from("-- before augur starts:\n");
    for s in initial {
        out.push_str(&shorten(s));
        out.push('\n');
    }
    out.push_str("-- augur run started\n");
    for s in steps {
        match s {
            Step::Sql(sql) => {
                for l in sql.lines() {
                    out.push_str(&shorten(l));
                    out.push('\n');
                }
            }
            Step::Fault(f) => out.push_str(&format!("-- fault: {f:?}\n")),
            Step::Settle => out.push_str("-- wait until the predicted table equals the source\n"),
            Step::Pause(d) => out.push_str(&format!("-- wait {d:?}\n")),
        }
    }
    out
}

/// Long generated values are shown by their length (the seed regenerates them exactly).
fn shorten(s: &str) -> String {
    let mut out = String::new();
    for part in s.split('\'').enumerate() {
        let (i, p) = part;
        if i > 0 {
            out.push('\'');
        }
        if i % 2 == 1 && p.len() > 40 {
            out.push_str(&format!("{}…[{} chars]", &p[..20], p.len()));
        } else {
            out.push_str(p);
        }
    }
    out
}

fn pg_log_of(h: &Harness) -> String {
    std::fs::read_to_string(h.scratch.join("pg.log")).unwrap_or_default()
}

/// The arguments of `augur run` for `db` with the shipped model, offsets in `dir`, no HTTP
/// listener, a slot of its own ([`slot_of`]), quick reconnects and status updates.
pub fn run_args(db: &TestDb, dir: &Path, batch: &str) -> Vec<String> {
    let store = crate::workspace_root().join("models").display().to_string();
    [
        "run",
        "--source-url",
        &db.url,
        "--offsets",
        &dir.join("offsets.json").display().to_string(),
        "--set",
        "http.listen=",
        "--set",
        &format!("pipeline.batch_size={batch}"),
        "--set",
        &format!("source.slot={}", slot_of(db)),
        "--set",
        "source.retriable.restart.connector.wait.ms=1000",
        "--set",
        "source.status.update.interval.ms=200",
        "--set",
        &format!("model.store={store}"),
        "--set",
        "model.tag=ford-price:1",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// The replication slot [`run_args`] gives augur for `db` (slots are per cluster; one per
/// database keeps seeds apart).
pub fn slot_of(db: &TestDb) -> String {
    format!("augur_{}", db.name)
}

/// Waits until augur's slot confirmed everything written so far (augur confirms only what
/// its sink committed).
pub fn wait_confirmed(pg: &TestPg, db: &TestDb, timeout: Duration) -> Result<(), String> {
    let end = psql_retry(pg, db, "SELECT pg_current_wal_lsn()")?;
    let confirmed = format!(
        "SELECT coalesce(bool_or(confirmed_flush_lsn >= '{}'), false) FROM pg_replication_slots WHERE slot_name = '{}'",
        end.trim(),
        slot_of(db)
    );
    let deadline = Instant::now() + timeout;
    while psql(pg, db, &confirmed).map(|o| o.trim() == "t") != Ok(true) {
        if Instant::now() >= deadline {
            return Err(format!(
                "the slot did not confirm {} within {timeout:?}",
                end.trim()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

/// Runs workload `seed` on `pg` (a fresh database) through `augur run`, and compares.
pub fn run_seed(h: &Harness, pg: &mut TestPg, seed: u64) -> Result<(), Failure> {
    let (initial, steps) = seed_workload(h, seed);
    run_workload(h, pg, seed, &initial, &steps)
}

/// The workload of `seed` as `h` runs it.
fn seed_workload(h: &Harness, seed: u64) -> (Vec<String>, Vec<Step>) {
    let (initial, mut steps) = workload(seed, h.faults);
    if h.kafka {
        // Over Kafka, some of the faults pause the broker instead.
        let mut rng = Rng::new(seed ^ 0xb40c);
        for s in &mut steps {
            if let Step::Fault(f) = s
                && rng.pct(40)
            {
                *f = Fault::PauseBroker;
            }
        }
    }
    (initial, steps)
}

/// Looks for a smaller workload that still fails like seed `seed` (a difference, not a
/// statement that no longer applies): drops ever smaller runs of statements and faults while
/// the failure stays, within `budget` runs. `None` when the failure does not come back.
pub fn minimize(h: &Harness, pg: &mut TestPg, seed: u64, budget: usize) -> Option<String> {
    // Units: each initial row, then each statement or other step.
    let (initial, steps) = seed_workload(h, seed);
    let mut units: Vec<(bool, Step)> = initial.into_iter().map(|s| (true, Step::Sql(s))).collect();
    for st in steps {
        match st {
            Step::Sql(sql) => units.extend(sql.lines().map(|l| (false, Step::Sql(l.to_string())))),
            other => units.push((false, other)),
        }
    }
    let split = |units: &[(bool, Step)]| {
        let initial: Vec<String> = units
            .iter()
            .filter_map(|(i, s)| match (i, s) {
                (true, Step::Sql(sql)) => Some(sql.clone()),
                _ => None,
            })
            .collect();
        let steps: Vec<Step> = units
            .iter()
            .filter(|(i, _)| !i)
            .map(|(_, s)| s.clone())
            .collect();
        (initial, steps)
    };
    let mut fails = |units: &[(bool, Step)]| {
        let (i, s) = split(units);
        matches!(run_workload(h, pg, seed, &i, &s), Err(f) if !f.diff.starts_with("step "))
    };
    if !fails(&units) {
        return None;
    }
    let mut runs = 1;
    let mut chunk = units.len().div_ceil(2);
    while chunk >= 1 && runs < budget {
        let mut at = 0;
        while at < units.len() && runs < budget {
            let mut trial = units.clone();
            trial.drain(at..(at + chunk).min(units.len()));
            runs += 1;
            if fails(&trial) {
                units = trial;
            } else {
                at += chunk;
            }
        }
        chunk /= 2;
    }
    let (i, s) = split(&units);
    Some(replay(&i, &s))
}

/// Waits until the predicted table equals the source. Embedded, the slot confirms what the
/// sink committed (so this is quick once [`wait_confirmed`]); over Kafka, what the broker
/// acknowledged, and the enrichment and sink stages follow.
fn settle(h: &Harness, pg: &TestPg, db: &TestDb, augur: &mut Augur) -> Result<(), String> {
    let within = Duration::from_secs(if h.kafka { 90 } else { 5 });
    let deadline = Instant::now() + within;
    loop {
        match compare(&h.augur, pg, db) {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(if h.kafka { 500 } else { 250 })),
        }
        if let Some(status) = augur.exited() {
            return Err(format!("augur exited ({status})"));
        }
    }
}

/// Runs a given workload (rows before augur starts, then steps) on `pg` (a fresh database
/// for [`TABLE`]) through `augur run`, and compares; `seed` names it and picks the batch size.
pub fn run_workload(
    h: &Harness,
    pg: &mut TestPg,
    seed: u64,
    initial: &[String],
    steps: &[Step],
) -> Result<(), Failure> {
    let fail = |diff: String, log: String| Failure {
        minimal: None,
        seed,
        diff,
        replay: replay(initial, steps),
        log: format!(
            "{log}\n--- PostgreSQL log (tail) ---\n{}",
            tail(&pg_log_of(h), 30)
        ),
    };
    let db = pg.database();
    psql_retry(pg, &db, TABLE).map_err(|e| fail(e, String::new()))?;
    if !initial.is_empty() {
        psql_retry(pg, &db, &initial.join("\n")).map_err(|e| fail(e, String::new()))?;
    }
    let dir = h.scratch.join(format!("seed-{seed}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).map_err(|e| fail(e.to_string(), String::new()))?;
    let mut rng = Rng::new(seed ^ 0x5eed);
    let batch = rng.pick(&["1", "3", "16", "1024"]).to_string();
    let mut args = run_args(&db, &dir, &batch);
    let broker = h.kafka.then(Tansu::start);
    if let Some(b) = &broker {
        args.push("--set".into());
        args.push(format!("kafka.bootstrap={}", b.bootstrap()));
    }
    args.extend(h.extra.iter().cloned());
    let mut augur = Augur::start(&h.augur, args, dir.join("augur.log"));
    for (i, step) in steps.iter().enumerate() {
        let r = match step {
            Step::Sql(sql) => psql_retry(pg, &db, sql).map(drop),
            Step::Fault(f) => augur
                .wait_streaming()
                .and_then(|()| inject(*f, pg, &db, &mut augur, broker.as_ref())),
            Step::Settle => settle(h, pg, &db, &mut augur),
            Step::Pause(d) => {
                std::thread::sleep(*d);
                Ok(())
            }
        };
        if let Err(e) = r {
            let _ = std::fs::write(h.scratch.join("pg.log"), pg.cluster.log());
            return Err(fail(format!("step {i}: {e}"), augur.log()));
        }
        if let Some(status) = augur.exited() {
            return Err(fail(
                format!("augur exited ({status}) during the workload"),
                augur.log(),
            ));
        }
    }
    // Everything written is confirmed by the slot (augur confirms only what its sink
    // committed), then the tables must be equal.
    if let Err(e) = wait_confirmed(pg, &db, Duration::from_secs(60)) {
        let diff = compare(&h.augur, pg, &db).err().unwrap_or_default();
        return Err(fail(format!("{e}; {diff}"), augur.log()));
    }
    if let Some(status) = augur.exited() {
        return Err(fail(format!("augur exited ({status})"), augur.log()));
    }
    if let Err(e) = settle(h, pg, &db, &mut augur) {
        return Err(fail(e, augur.log()));
    }
    augur.kill();
    // The slot holds WAL for the whole cluster: drop it once its walsender has gone.
    let drop = format!("SELECT pg_drop_replication_slot('{}')", slot_of(&db));
    let deadline = Instant::now() + Duration::from_secs(10);
    while psql(pg, &db, &drop).is_err() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// Runs seeds `seeds` on one cluster, stopping at the first failure.
pub fn run_seeds(h: &Harness, seeds: std::ops::Range<u64>) -> Result<usize, Failure> {
    let mut pg = TestPg::start();
    let mut n = 0;
    for seed in seeds {
        let t = Instant::now();
        if let Err(mut f) = run_seed(h, &mut pg, seed) {
            // Look for a smaller replay before reporting, within AUGUR_DIFF_MINIMIZE runs
            // (25 unless set; 0 turns it off).
            let budget = std::env::var("AUGUR_DIFF_MINIMIZE")
                .ok()
                .and_then(|b| b.parse().ok())
                .unwrap_or(25);
            if budget > 0 {
                f.minimal = minimize(h, &mut pg, seed, budget);
            }
            return Err(f);
        }
        n += 1;
        // Progress for long soaks (shown with --nocapture).
        eprintln!("seed {seed}: equal ({} ms)", t.elapsed().as_millis());
    }
    Ok(n)
}
