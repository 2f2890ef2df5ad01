import DESKit

/// One check of a conformance suite that did not hold.
public struct ConformanceFailure: Error, Sendable, CustomStringConvertible {
    /// The check's name.
    public var check: String
    /// What went wrong.
    public var message: String
    public var description: String { "\(check): \(message)" }
}

/// What a conformance suite found: the checks that held and those that did not.
public struct ConformanceReport: Sendable, CustomStringConvertible {
    /// Names of the checks that held.
    public var passed: [String] = []
    /// The checks that did not.
    public var failures: [ConformanceFailure] = []
    /// Whether every check held.
    public var isOK: Bool { failures.isEmpty && !passed.isEmpty }
    public var description: String {
        isOK ? "\(passed.count) checks passed" : failures.map(\.description).joined(separator: "\n")
    }
}

/// Runs named checks, each on its own, collecting failures (a thrown error fails that check only).
struct CheckRunner {
    var report = ConformanceReport()

    mutating func run(_ name: String, _ body: () async throws -> Void) async {
        do {
            try await body()
            report.passed.append(name)
        } catch let failure as ConformanceFailure {
            report.failures.append(failure)
        } catch {
            report.failures.append(ConformanceFailure(check: name, message: "threw \(error)"))
        }
    }
}

/// Fails `check` with `message` unless `condition` holds.
func require(_ condition: Bool, _ check: String, _ message: @autoclosure () -> String) throws {
    if !condition { throw ConformanceFailure(check: check, message: message()) }
}
