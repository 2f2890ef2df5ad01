import DESKit
import Foundation

/// Exponential backoff with jitter for transient errors.
public struct RetryPolicy: Sendable {
    /// Retries after the first attempt.
    public var maxRetries: Int
    /// Delay before the first retry, in seconds.
    public var baseDelay: Double
    /// Growth factor per retry.
    public var multiplier: Double
    /// Longest delay.
    public var maxDelay: Double

    /// Creates a policy.
    public init(maxRetries: Int = 3, baseDelay: Double = 0.1, multiplier: Double = 2, maxDelay: Double = 10) {
        self.maxRetries = max(0, maxRetries)
        self.baseDelay = baseDelay
        self.multiplier = multiplier
        self.maxDelay = maxDelay
    }

    /// For metadata-store and storage calls: enough patience to ride out a lock held for
    /// half a minute or a short outage (about a minute of backoff in all).
    public static let metadata = RetryPolicy(maxRetries: 8, baseDelay: 0.25, multiplier: 2, maxDelay: 15)

    /// The delay before retry number `attempt` (1-based): full jitter over the exponential step.
    public func delay(attempt: Int) -> Double {
        let step = min(maxDelay, baseDelay * pow(multiplier, Double(max(0, attempt - 1))))
        return Double.random(in: (step / 2)...step)
    }

    /// Whether an error is worth retrying: transient database, storage or connection errors.
    public static func isTransient(_ error: Error) -> Bool {
        switch error {
        case let e as DESKitError: return e.isTransient || e.code == .unavailable
        case let e as SQLError: return e.isTransient
        default: return false
        }
    }

    /// Runs `body`, retrying transient failures; `onRetry` is told of each retry.
    @discardableResult
    public func run<T: Sendable>(
        onRetry: (Error, Int) -> Void = { _, _ in }, _ body: () async throws -> T
    ) async throws -> T {
        var attempt = 0
        while true {
            do {
                return try await body()
            } catch {
                attempt += 1
                guard attempt <= maxRetries, Self.isTransient(error) else { throw error }
                onRetry(error, attempt)
                try await Task.sleep(nanoseconds: nanoseconds(delay(attempt: attempt)))
            }
        }
    }
}

/// A short label for an error, used as the `error_type` metric dimension.
public func errorType(_ error: Error) -> String {
    switch error {
    case let e as DESKitError: return e.code.description
    case let e as SQLError: return e.isTransient ? "database_transient" : "database"
    default: return String(describing: type(of: error))
    }
}
