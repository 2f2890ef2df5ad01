// des-fuzz: drives the fuzz targets of DESFuzz with seeded random mutations of a seed corpus
// (the golden vectors and shipped configs), keeping inputs whose outcome is new.
//
//   des-fuzz TARGET [--seconds S] [--runs N] [--seed N] [--configs DIR] [--crash-dir DIR]
//   des-fuzz TARGET --write-seeds DIR [--configs DIR]      (the seed corpus as files, for libFuzzer)
//
// TARGET is `archive` or `config`. Prints `key value` lines (execs, execs_per_sec, corpus,
// peak_rss_mb). A crash or a hang writes the input to CRASH-DIR and exits non-zero.
import DESFuzz
import DESTestSupport
import Foundation

#if canImport(Glibc)
import Glibc
#endif

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("des-fuzz: " + message + "\n").utf8))
    exit(64)
}

let args = Array(CommandLine.arguments.dropFirst())
guard let target = args.first, FuzzTargets.names.contains(target) else {
    fail("usage: des-fuzz archive|config [--seconds S] [--runs N] [--seed N] [--configs DIR] [--crash-dir DIR]")
}
var seconds = 10.0, runs = Int.max, seed: UInt64 = 1
var configs: String? = nil, crashDir = FileManager.default.currentDirectoryPath, seedsOut: String? = nil
var i = 1
while i + 1 < args.count {
    switch args[i] {
    case "--seconds": seconds = Double(args[i + 1]) ?? seconds
    case "--runs": runs = Int(args[i + 1]) ?? runs
    case "--seed": seed = UInt64(args[i + 1]) ?? seed
    case "--configs": configs = args[i + 1]
    case "--crash-dir": crashDir = args[i + 1]
    case "--write-seeds": seedsOut = args[i + 1]
    default: fail("unknown option \(args[i])")
    }
    i += 2
}

/// The mutations are reproducible from the seed (SplitMix64, shared with the benchmarks).
typealias Mix = SeededRNG
extension SeededRNG {
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(next() % UInt64(n)) }
}

let interesting64: [UInt64] = [0, 1, 15, 16, 72, 88, 0x7F, 0xFF, 0xFFFF, 1 << 31, 1 << 32, 1 << 42, 5 << 40, 1 << 63, .max - 1, .max]
let interesting8: [UInt8] = [0, 1, 0x02, 0x04, 0x08, 0x10, 0x0A, 0x1B, 0x22, 0x2F, 0x5C, 0x7B, 0x7D, 0x7F, 0x80, 0xFF]
let tokens: [String] = ["{", "}", "[", "]", ":", ",", "\"", "${", "${X:-", "}", "<<: *a", "&a ", "\n  - ", "1e400", "-1", ".inf", "nan", "null", "~", "0x10", "\u{0}", "size", "sha256", "sources", "packer", "lease_ttl_seconds: ", "type: ", "sqlite"]

func mutate(_ input: [UInt8], corpus: [[UInt8]], rng: inout Mix) -> [UInt8] {
    var b = input
    for _ in 0...rng.below(4) {
        switch rng.below(10) {
        case 0 where !b.isEmpty: b[rng.below(b.count)] ^= UInt8(1 << rng.below(8))
        case 1 where !b.isEmpty: b[rng.below(b.count)] = interesting8[rng.below(interesting8.count)]
        case 2 where b.count >= 8:
            let at = rng.below(b.count - 7)
            let v = interesting64[rng.below(interesting64.count)]
            for k in 0..<8 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
        case 3 where !b.isEmpty:
            let start = rng.below(b.count)
            b.removeSubrange(start..<min(b.count, start + 1 + rng.below(16)))
        case 4: b.insert(contentsOf: (0..<(1 + rng.below(8))).map { _ in UInt8(truncatingIfNeeded: rng.next()) }, at: rng.below(b.count + 1))
        case 5 where !b.isEmpty: b = Array(b.prefix(rng.below(b.count)))
        case 6 where b.count > 2:
            let start = rng.below(b.count), length = 1 + rng.below(min(64, b.count - start))
            b.insert(contentsOf: b[start..<(start + length)], at: rng.below(b.count + 1))
        case 7:
            let other = corpus[rng.below(corpus.count)]
            if !other.isEmpty {
                let cut = rng.below(other.count)
                b = Array(b.prefix(rng.below(b.count + 1))) + other[cut...]
            }
        case 8: b.insert(contentsOf: Array(tokens[rng.below(tokens.count)].utf8), at: rng.below(b.count + 1))
        default:
            // Footer fields: overwrite one of the seven u64 values near the end.
            if b.count >= 72 {
                let at = b.count - 56 + 8 * rng.below(7)
                let v = interesting64[rng.below(interesting64.count)]
                for k in 0..<8 { b[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(k))) }
            }
        }
    }
    if b.count > 1 << 20 { b = Array(b.prefix(1 << 20)) }
    return b
}

// --write-seeds DIR: the seed corpus as files (for libFuzzer), then stop.
if let seedsOut {
    do {
        try FileManager.default.createDirectory(atPath: seedsOut, withIntermediateDirectories: true)
        for (n, seed) in try FuzzTargets.seeds(for: target, configDirectory: configs).enumerated() {
            try Data(seed).write(to: URL(fileURLWithPath: seedsOut + "/seed-\(n)"))
        }
        exit(0)
    } catch {
        fail("cannot write seeds: \(error)")
    }
}

// Crash capture: the input being run is kept where a signal handler can write it out.
nonisolated(unsafe) var currentInput = UnsafeMutablePointer<UInt8>.allocate(capacity: (1 << 20) + 1)
nonisolated(unsafe) var currentLength = 0
let crashPath = crashDir + "/des-fuzz-\(target)-crash-\(getpid()).bin"
nonisolated(unsafe) let crashPathC = strdup(crashPath)

@Sendable func writeCrash() {
    guard let path = crashPathC else { return }
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
    if fd >= 0 {
        _ = write(fd, currentInput, currentLength)
        close(fd)
    }
}

for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] {
    signal(sig) { _ in
        writeCrash()
        let message = "des-fuzz: crashed (signal); input saved\n"
        _ = message.withCString { write(2, $0, strlen($0)) }
        _exit(70)
    }
}

// Hang watchdog: one input taking more than 10 s is a hang.
nonisolated(unsafe) var lastProgress = Date().timeIntervalSince1970
let watchdog = Thread {
    while true {
        sleep(1)
        if Date().timeIntervalSince1970 - lastProgress > 10 {
            writeCrash()
            FileHandle.standardError.write(Data("des-fuzz: an input ran for more than 10 s (hang); input saved to \(crashPath)\n".utf8))
            _exit(71)
        }
    }
}
watchdog.start()

do {
    let scratch = try FuzzScratch()
    var corpus = try FuzzTargets.seeds(for: target, configDirectory: configs)
    let seedCount = corpus.count
    var seen = Set<String>()
    for input in corpus { seen.insert(FuzzTargets.run(target, input, scratch: scratch)) }
    var rng = Mix(seed: seed)
    let start = Date().timeIntervalSince1970
    var execs = 0
    while execs < runs && Date().timeIntervalSince1970 - start < seconds {
        let input = mutate(corpus[rng.below(corpus.count)], corpus: corpus, rng: &rng)
        input.withUnsafeBytes { raw in
            if let base = raw.baseAddress { currentInput.update(from: base.assumingMemoryBound(to: UInt8.self), count: raw.count) }
        }
        currentLength = input.count
        let signature = FuzzTargets.run(target, input, scratch: scratch)
        lastProgress = Date().timeIntervalSince1970
        if !seen.contains(signature), corpus.count < 4096 {
            seen.insert(signature)
            corpus.append(input)
        }
        execs += 1
    }
    let elapsed = max(Date().timeIntervalSince1970 - start, 1e-9)
    // VmHWM, not getrusage's ru_maxrss: the latter carries the parent's peak across exec.
    let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
    let hwmKiB = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") }
        .flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
    print("target \(target)")
    print("execs \(execs)")
    print("seconds \(String(format: "%.1f", elapsed))")
    print("execs_per_sec \(Int(Double(execs) / elapsed))")
    print("corpus \(corpus.count) (\(seedCount) seeds, \(corpus.count - seedCount) kept for new outcomes)")
    print("outcomes \(seen.count)")
    print("peak_rss_mb \(hwmKiB / 1024)")
} catch {
    fail("\(error)")
}
