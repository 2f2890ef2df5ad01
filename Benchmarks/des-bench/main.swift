// des-bench: in-process benchmarks.
//
//   des-bench gets ARCHIVE [--seconds S] [--seed N]     warm gets on a packed archive
//   des-bench claims [ROWS] [CLAIMERS] [BATCH]          claimed rows/s on PostgreSQL ($DES_TEST_POSTGRES)
//   des-bench index-reads [SIZES]                        requests and index bytes per read, two-level vs flat (S3)
//
// Prints `key value` lines: warm random file(named:) gets/s from one thread (best of three windows),
// and batch reads (positional mode) with the number of merged reads.
import DESFormat
import DESKit
import DESTestSupport
import Foundation

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("des-bench: " + message + "\n").utf8))
    exit(64)
}

let args = Array(CommandLine.arguments.dropFirst())
if args.first == "s3-reads" {
    let files = args.count > 1 ? Int(args[1]) ?? 1000 : 1000
    let gets = args.count > 2 ? Int(args[2]) ?? 2000 : 2000
    do { try await runS3ReadsBenchmark(files: files, gets: gets) } catch { fail("s3-reads: \(error)") }
    exit(0)
}
if args.first == "index-reads" {
    // des-bench index-reads [SIZES]: comma-separated entry counts (default 1000,100000,1000000).
    let sizes = (args.count > 1 ? args[1] : "1000,100000,1000000").split(separator: ",").compactMap { Int($0) }
    do { try await runIndexReadsBenchmark(sizes: sizes) } catch { fail("index-reads: \(error)") }
    exit(0)
}
if args.first == "claims" {
    // des-bench claims [ROWS] [CLAIMERS] [BATCH]: on the test servers (scripts/test-servers.sh): PostgreSQL
    // ($DES_TEST_POSTGRES) and, when its settings are there, MariaDB ($DES_TEST_MARIADB_*).
    let env = ProcessInfo.processInfo.environment
    guard let conninfo = env["DES_TEST_POSTGRES"] else {
        fail("claims: DES_TEST_POSTGRES is not set (scripts/test-servers.sh up)")
    }
    let n = args.count > 1 ? Int(args[1]) ?? 200_000 : 200_000
    let claimers = args.count > 2 ? Int(args[2]) ?? 4 : 4
    let batch = args.count > 3 ? Int(args[3]) ?? 1000 : 1000
    do {
        var databases = [BenchDatabase.postgres(conninfo: conninfo)]
        if let host = env["DES_TEST_MARIADB_HOST"], let port = env["DES_TEST_MARIADB_PORT"].flatMap(Int.init) {
            databases.append(
                try .mariadb(
                    ConnectionConfig(
                        type: "mariadb", host: host, port: port, username: env["DES_TEST_MARIADB_USER"],
                        password: env["DES_TEST_MARIADB_PASSWORD"].map(Secret.init))))
        }
        try await runClaimsBenchmark(databases: databases, rows: n, claimers: claimers, batch: batch)
    } catch {
        fail("claims: \(error)")
    }
    exit(0)
}
guard args.count >= 2, args[0] == "gets" else {
    fail("usage: des-bench gets ARCHIVE [--seconds S] [--seed N] | des-bench claims [ROWS] [CLAIMERS] [BATCH]")
}
let path = args[1]
var seconds = 2.0
var seed: UInt64 = 1
var i = 2
while i + 1 < args.count {
    switch args[i] {
    case "--seconds": seconds = Double(args[i + 1]) ?? seconds
    case "--seed": seed = UInt64(args[i + 1]) ?? seed
    default: fail("unknown option \(args[i])")
    }
    i += 2
}

/// Warm random gets/s from one thread over `reader`: the best of three windows of a third of
/// `seconds` each, as the pack timings are (a shared machine's noise only ever slows a run down).
func measureGets(_ reader: DESArchiveReader, picks: [String], seconds: Double) throws -> [Double] {
    var sink = 0
    for entry in reader.entries { sink &+= try reader.file(named: entry.name).count }  // warm-up: every page once
    var gets = 0
    var rates: [Double] = []
    for _ in 0..<3 {
        let start = now()
        var end = start
        var done = 0
        while end - start < seconds / 3 {
            for _ in 0..<10_000 {
                sink &+= try reader.file(named: picks[gets & (picks.count - 1)]).count
                gets += 1
            }
            done += 10_000
            end = now()
        }
        rates.append(Double(done) / (end - start))
    }
    if sink == -1 { print("") }
    return rates
}

do {
    // Mapped, as measured before reads became positional by default (the ratio the target tracks),
    // then positional, the default, which a file shrinking under the reader cannot crash.
    let mapped = try DESArchiveReader(path: path, mode: .mapped)
    let names = mapped.entries.map(\.name)
    guard !names.isEmpty else { fail("archive is empty") }
    var rng = SeededRNG(seed: seed)
    let picks = (0..<(1 << 20)).map { _ in names[Int(rng.next() % UInt64(names.count))] }
    let rates = try measureGets(mapped, picks: picks, seconds: seconds)
    print("gets_per_sec \(Int(rates.max() ?? 0))")
    print("gets_per_sec_windows \(rates.map { String(Int($0)) }.joined(separator: " "))")
    let positionalRates = try measureGets(try DESArchiveReader(path: path, mode: .positional), picks: picks, seconds: seconds)
    print("gets_per_sec_positional \(Int(positionalRates.max() ?? 0))")

    // Batch read of 1,000 random names in positional mode: reads merged by gap.
    let positional = try DESArchiveReader(path: path, mode: .positional)
    let batch = Array(picks.prefix(1000))
    let t0 = now()
    let got = try positional.files(named: batch)
    let t1 = now()
    print("batch_files \(got.count)")
    print("batch_reads \(positional.bodyReadCount)")
    print("batch_seconds \(String(format: "%.4f", t1 - t0))")
} catch {
    fail("\(error)")
}
