import Foundation
import Testing

/// The fuzz targets run a fixed number of times on every test run (`make fuzz` runs them for
/// ten minutes each): no crash, no hang, bounded memory, and the mutations reach more than the seeds.
@Suite("Fuzz smoke")
struct FuzzSmokeTests {
    @Test("des-fuzz runs each target 1,500 times without a crash or a hang", arguments: ["archive", "config"])
    func briefFuzz(target: String) async throws {
        let dir = FileManager.default.temporaryDirectory.path + "/des-fuzz-smoke-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        do {
            let fuzz = URL(fileURLWithPath: try desBinary()).deletingLastPathComponent().appendingPathComponent("des-fuzz").path
            let configs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("configs").path
            let run = try await runProcessAwaiting(
                fuzz, [target, "--runs", "1500", "--seconds", "120", "--seed", "\(UInt32.random(in: 1...UInt32.max))", "--configs", configs, "--crash-dir", dir])
            #expect(run.status == 0, "des-fuzz \(target) failed: \(run.stderr)")
            var values: [String: String] = [:]
            for line in run.out.split(separator: "\n") {
                let parts = line.split(separator: " ", maxSplits: 1).map(String.init)
                if parts.count == 2 { values[parts[0]] = parts[1] }
            }
            // A count, not a rate: on a machine busy with the other tests a run of a few seconds
            // does fewer executions, and speed is the benchmarks' business. The 120 s are the hang guard.
            #expect((Int(values["execs"] ?? "") ?? 0) >= 1500, "\(run.out)")
            #expect((Int(values["outcomes"] ?? "") ?? 0) > 5, "\(run.out)")
            #expect((Int(values["peak_rss_mb"] ?? "") ?? 1000) < 100, "\(run.out)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir).filter { $0.hasPrefix("des-fuzz") }.isEmpty)
        }
    }
}
